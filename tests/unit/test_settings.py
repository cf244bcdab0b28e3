import pytest

from market_proxy.exchanges.clients import new_client
from market_proxy.settings import Settings, SettingsError


def test_environment_names_are_the_upper_cased_fields() -> None:
    settings = Settings.from_env(
        {
            "TABLE_NAME": "cache",
            "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:8001",
            "EXCHANGES": " Binance, kraken ,binance",
            "EXCHANGE_OPTIONS": '{"kraken": {"timeout": 3000, "urls": {"api": {"public": "x"}}}}',
            "TICKER_TTL_SECONDS": "1.5",
            "PORT": "9000",
        }
    )
    assert settings.table_name == "cache"
    assert settings.dynamodb_endpoint_url == "http://127.0.0.1:8001"
    assert settings.exchanges == ("binance", "kraken")
    assert settings.exchange_options["kraken"]["timeout"] == 3000
    assert settings.ticker_ttl_seconds == 1.5
    assert settings.ticker_policy.fresh_s == 1.5
    assert settings.port == 9000


def test_defaults_serve_without_any_environment() -> None:
    settings = Settings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.dynamodb_endpoint_url is None


def test_aws_default_region_is_used_when_aws_region_is_not_set() -> None:
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}).aws_region == "eu-west-1"
    both = {"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert Settings.from_env(both).aws_region == "ap-south-1"


@pytest.mark.parametrize(
    ("name", "value", "mentioned"),
    [
        ("EXCHANGE_OPTIONS", "{not json", "EXCHANGE_OPTIONS"),
        ("TICKER_TTL_SECONDS", "-1", "TICKER_TTL_SECONDS"),
        ("EXCHANGES", ",", "EXCHANGES"),
        ("EXCHANGES", "bin ance", "EXCHANGES"),
        ("PORT", "99999", "PORT"),
    ],
)
def test_a_bad_variable_is_named_in_the_error(name: str, value: str, mentioned: str) -> None:
    with pytest.raises(SettingsError, match=mentioned):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("limits", "mentioned"),
    [
        ('{"binance": {"per_secnd": 5}}', "per_secnd"),
        ('{"Binance": {"per_second": 5}}', "Binance"),
        ('{"binance": {"per_second": -1}}', "positive"),
        ('{"binance": {"lease": "abc"}}', "positive"),
        ('{"binance": {"weight_header": 5}}', "weight_header"),
    ],
)
def test_exchange_limits_that_cannot_be_meant_are_refused_at_start(
    limits: str, mentioned: str
) -> None:
    with pytest.raises(SettingsError, match=mentioned):
        Settings.from_env({"EXCHANGE_LIMITS": limits})


def test_exchange_limits_as_documented_are_taken() -> None:
    given = '{"binance": {"per_second": 20, "lease": 4, "reserve": 0, "weight_header": "X-A"}}'
    assert Settings.from_env({"EXCHANGE_LIMITS": given}).exchange_limits["binance"]["lease"] == 4


def test_exchange_options_cannot_switch_off_the_limiter_the_fleet_budget_runs_in() -> None:
    settings = Settings.from_env({"EXCHANGE_OPTIONS": '{"binance": {"enableRateLimit": false}}'})
    assert new_client(settings, "binance").enableRateLimit is True
