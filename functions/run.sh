#!/bin/bash
# StreamFunction's entry. The Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# runs this script, waits until the app answers its readiness path, then forwards each
# invocation to it as an HTTP request and streams the response back.
PATH=$PATH:$LAMBDA_TASK_ROOT/bin \
    PYTHONPATH=$LAMBDA_TASK_ROOT:$PYTHONPATH \
    exec python -m uvicorn stream_app:app --host 127.0.0.1 --port "${PORT:-8080}" \
    --no-access-log --lifespan on --timeout-graceful-shutdown 2
