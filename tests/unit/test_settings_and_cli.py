import pytest
from pydantic import ValidationError

from voice.cli import build_parser, main
from voice.settings import Settings, load_settings

pytestmark = pytest.mark.unit


def test_defaults_serve_on_loopback_8080_with_embedded_models():
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.asr_model is None and settings.tts_voice is None
    assert settings.database_file.name == "calls.sqlite3"


def test_environment_variables_override_defaults(monkeypatch):
    monkeypatch.setenv("IVA_PORT", "9000")
    monkeypatch.setenv("IVA_TWILIO_AUTH_TOKEN", "secret")
    settings = load_settings()
    assert settings.port == 9000 and settings.twilio_auth_token == "secret"


def test_a_toml_file_named_by_iva_config_is_read(monkeypatch, tmp_path):
    config = tmp_path / "iva.toml"
    config.write_text('port = 8181\ngreeting = "Hello from the test"\n')
    monkeypatch.setenv("IVA_CONFIG", str(config))
    settings = load_settings()
    assert settings.port == 8181 and settings.greeting == "Hello from the test"


def test_bad_values_name_the_setting(monkeypatch):
    monkeypatch.setenv("IVA_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        load_settings()


def test_a_missing_config_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("IVA_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match="IVA_CONFIG"):
        load_settings()


def test_serve_with_a_bad_setting_exits_2_with_a_message(monkeypatch, capsys):
    monkeypatch.setenv("IVA_END_OF_TURN_SILENCE_MS", "5")
    assert main(["serve"]) == 2
    assert "end_of_turn_silence_ms" in capsys.readouterr().err


def test_help_lists_both_commands(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "serve" in out and "call" in out


def test_call_rejects_a_missing_wav_and_bad_digits(capsys):
    assert main(["call", "/nonexistent.wav"]) == 2
    assert main(["call", "dtmf:12x"]) == 2
    err = capsys.readouterr().err
    assert "no such WAV file" in err and "DTMF digits" in err


def test_call_reports_an_unreachable_server_in_one_line(capsys):
    assert main(["call", "--url", "ws://127.0.0.1:9/twilio/stream", "dtmf:1#"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0]


def test_serve_with_an_unknown_asr_model_exits_2_naming_the_setting(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("IVA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVA_ASR_MODEL", "large-v3")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "IVA_ASR_MODEL='large-v3': unknown model" in err and "tiny.en, base" in err
