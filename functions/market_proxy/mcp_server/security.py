"""Which requests ``/mcp`` takes: the SDK's Host and Origin checks, set for where it runs."""

from __future__ import annotations

from mcp.server.transport_security import TransportSecuritySettings

from market_proxy.settings import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Host and Origin checks (DNS rebinding), chosen by where the app is served.

    On a laptop (``make run``, listening on a loopback address) they are on: a web page
    could otherwise rebind its own name to 127.0.0.1 and call the tools. Deployed, they are
    off: API Gateway (and a Function URL) answers only for its own domain names, so a rebound
    name never reaches the function, and its Host (``<id>.execute-api.<region>.amazonaws.com``
    or a custom domain) is not known here. The SDK's default would refuse that Host (421).
    Browsers calling the API from other origins are CORS's to allow (the app's middleware).
    """
    loopback = settings.host in LOOPBACK
    if not (settings.local_run and loopback):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*hosts, *(f"{host}:*" for host in hosts)],
        allowed_origins=[
            *(f"http://{host}:*" for host in hosts),
            *(origin for origin in settings.cors_allow_origins if origin != "*"),
        ],
    )
