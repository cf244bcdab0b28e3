import pytest

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
