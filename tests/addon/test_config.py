"""The app's files against the Supervisor's rules: config.yaml, translations, Dockerfile, s6
service, AppArmor profile, images, documentation."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path, PurePath
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ledger_core import __version__
from ledger_core.app_entry import (
    API_PORT,
    DATABASES,
    INGRESS_PROXY,
    OPTION_NAMES,
    P2P_PORT,
    OptionsError,
    parse_options,
)
from tests.addon.helpers import parse_or_error
from tests.addon.supervisor_schema import (
    APP_CONFIG_KEYS,
    ARCHES,
    BACKUP_MODES,
    BOOTS,
    LEGACY_MAP_TYPES,
    MAP_TYPES,
    PORT_KEY_RE,
    REQUIRED_KEYS,
    SLUG_RE,
    STARTUPS,
    TRANSLATION_KEYS,
    WATCHDOG_RE,
    OptionError,
    SchemaError,
    check_options,
    parse_element,
    parse_schema,
)

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "addon"
SERVICE = APP / "rootfs/etc/s6-overlay/s6-rc.d/transactiva"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = _yaml(APP / "config.yaml")
    assert isinstance(loaded, dict)
    return loaded


# -- the grammar itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "str",
        "str?",
        "str(3,)",
        "str(,10)?",
        "password",
        "password(8,64)",
        "int",
        "int(-5,5)",
        "int(0,)?",
        "float",
        "float(0.5,2)",
        "float(-1.5,.5)",
        "bool",
        "email?",
        "url",
        "port?",
        "device",
        "device(subsystem=tty)",
        "match(^[a-z]+$)",
        "list(a|b|c)?",
        "",
    ],
)
def test_schema_strings_the_supervisor_accepts(text: str) -> None:
    element = parse_element(text)
    assert element.optional is text.endswith("?")


@pytest.mark.parametrize(
    "text",
    ["string", "int(1.5,2)", "str(-1,)", "list()", "device(tty)", "match([)", "float(a,b)", "?x"],
)
def test_schema_strings_the_supervisor_refuses(text: str) -> None:
    with pytest.raises(SchemaError):
        parse_element(text)


@given(st.text(max_size=40))
def test_the_grammar_parser_answers_any_text_with_an_element_or_a_schema_error(text: str) -> None:
    try:
        parse_element(text)
    except SchemaError:
        return


def test_option_checks_follow_the_supervisor() -> None:
    schema = {"a": "int(1,10)", "b": "str?", "c": ["match(^x+$)"], "d": {"e": "bool"}}
    check_options(schema, {"a": "7", "c": ["x", "xx"], "d": {"e": "on"}})
    for bad in (
        {"c": [], "d": {"e": True}},  # a missing
        {"a": 11, "c": [], "d": {"e": True}},
        {"a": 1, "c": ["y"], "d": {"e": True}},
        {"a": 1, "c": [], "d": {"e": "maybe"}},
        {"a": 1, "c": [], "d": {"e": True}, "z": 1},
        {"a": None, "c": [], "d": {"e": True}},
    ):
        with pytest.raises(OptionError):
            check_options(schema, bad)


# -- config.yaml -------------------------------------------------------------------------


def test_config_has_only_keys_the_supervisor_knows_and_the_required_ones(
    config: dict[str, Any],
) -> None:
    assert set(config) <= APP_CONFIG_KEYS, set(config) - APP_CONFIG_KEYS
    assert set(config) >= REQUIRED_KEYS
    assert SLUG_RE.fullmatch(config["slug"])
    assert config["slug"] == "transactiva"
    assert config["version"] == __version__


def test_config_follows_the_2026_app_conventions(config: dict[str, Any]) -> None:
    assert config["arch"] == ["aarch64", "amd64"]
    assert set(config["arch"]) <= ARCHES
    assert config["init"] is False
    assert not (APP / "build.yaml").exists()
    assert not (APP / "build.json").exists()
    assert not (APP / "config.json").exists()
    assert config["startup"] in STARTUPS
    assert config["boot"] in BOOTS
    assert config["backup"] in BACKUP_MODES
    for volume in config["map"]:
        assert volume["type"] in MAP_TYPES
        assert volume["type"] not in LEGACY_MAP_TYPES, "legacy map types are deprecated (2026.07)"
        assert volume["read_only"] is True
    assert isinstance(config["timeout"], int)
    assert 10 <= config["timeout"] <= 300


def test_ingress_discovery_and_watchdog(config: dict[str, Any]) -> None:
    assert config["ingress"] is True
    assert config["ingress_port"] == API_PORT
    assert config["panel_icon"].startswith("mdi:")
    assert config["discovery"] == ["transactiva"]
    assert WATCHDOG_RE.match(config["watchdog"])
    assert f"[PORT:{API_PORT}]" in config["watchdog"]
    assert config["watchdog"].endswith("/api/v1/status")
    # The discovery API is open to apps without hassio_api; asking for less rates better.
    assert not config.get("hassio_api", False)
    assert not config.get("homeassistant_api", False)
    assert not config.get("host_network", False)
    assert not config.get("privileged")
    assert config.get("apparmor", True) is True
    assert INGRESS_PROXY == "172.30.32.2"


def test_only_the_p2p_port_is_exposed(config: dict[str, Any]) -> None:
    ports = config["ports"]
    assert all(PORT_KEY_RE.fullmatch(key) for key in ports)
    assert ports == {f"{API_PORT}/tcp": None, f"{P2P_PORT}/tcp": P2P_PORT}
    assert set(config["ports_description"]) == set(ports)


def test_backups_skip_the_live_databases_but_keep_their_snapshots(
    config: dict[str, Any],
) -> None:
    """The Supervisor matches each pattern with PurePath.match against the full path."""

    def excluded(relative: str) -> bool:
        full = PurePath("/data/apps/data/transactiva") / relative
        return any(full.match(pattern) for pattern in config["backup_exclude"])

    for name in DATABASES:
        assert excluded(f"node/{name}")
        assert excluded(f"node/{name}-wal")
        assert excluded(f"node/{name}-shm")
        assert not excluded(f"snapshot/{name}")
    for kept in ("options.json", "node/genesis.json", "node/keys/validator.key", "node/api-token"):
        assert not excluded(kept)
    assert config["backup_pre"] == "transactiva app backup-pre"
    assert config["backup_post"] == "transactiva app backup-post"


def test_every_schema_string_is_in_the_grammar_and_every_option_has_a_schema(
    config: dict[str, Any],
) -> None:
    schema, options = config["schema"], config["options"]
    parse_schema(schema)
    assert set(options) <= set(schema)
    check_options(schema, options)
    for key, rule in schema.items():
        optional = (rule[0] if isinstance(rule, list) else rule).endswith("?")
        # An optional key with a default would be required (the Supervisor keeps defaults).
        assert (key not in options) is optional, key


def test_schema_and_the_entry_point_know_the_same_options(config: dict[str, Any]) -> None:
    assert set(config["schema"]) == set(OPTION_NAMES)
    defaults = parse_options(config["options"])
    assert defaults.role == "home"
    assert defaults.meter_source == "home_assistant"


def test_translations_cover_every_option_and_port_in_english_and_spanish(
    config: dict[str, Any],
) -> None:
    for language in ("en", "es"):
        translations = _yaml(APP / "translations" / f"{language}.yaml")
        assert set(translations) <= TRANSLATION_KEYS
        configuration = translations["configuration"]
        assert set(configuration) == set(config["schema"]), language
        for key, entry in configuration.items():
            assert set(entry) <= {"name", "description", "fields"}, (language, key)
            assert entry["name"].strip(), (language, key)
            assert entry["description"].strip(), (language, key)
        assert set(translations["network"]) == set(config["ports"]), language
    english = _yaml(APP / "translations/en.yaml")["configuration"]
    spanish = _yaml(APP / "translations/es.yaml")["configuration"]
    assert all(english[k]["name"] != spanish[k]["name"] for k in english if k != "role")


# -- options from the schema and the entry point agree -----------------------------------

ROLE = st.sampled_from(["home", "concentrator", "validator"])
SOURCE = st.sampled_from(["smartpi", "mqtt", "home_assistant", "none"])
LABEL = r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?"
SEED = st.one_of(
    st.from_regex(rf"\A(tv[0-9a-f]{{40}}@)?{LABEL}(\.{LABEL}){{0,3}}:[1-9][0-9]{{0,3}}\Z"),
    st.from_regex(r"\A192\.168\.(0|[1-9][0-9]?)\.(0|[1-9][0-9]?):26656\Z"),
    st.just("[fd00::1]:26656"),
)
OPTIONAL = {
    "genesis_file": st.from_regex(r"\Atransactiva/[a-z]{1,10}\.json\Z"),
    "smartpi_url": st.from_regex(r"\Ahttp://192\.168\.1\.[0-9]{1,2}:1080\Z"),
    "mqtt_host": st.from_regex(r"\A[a-z]{1,12}\.local\Z"),
    "mqtt_port": st.integers(1, 65535),
    "mqtt_topic_base": st.text("abc/", min_size=1, max_size=12),
    "mqtt_username": st.text("abcdef", min_size=1, max_size=8),
    "mqtt_password": st.text("abc123!", min_size=1, max_size=12),
    "tariff_file": st.from_regex(r"\Atariffs/[a-z]{1,10}\.toml\Z"),
}


@st.composite
def schema_options(draw: st.DrawFn) -> dict[str, Any]:
    """Options the Supervisor's schema admits."""
    options: dict[str, Any] = {
        "role": draw(ROLE),
        "chain_id": draw(st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,47}\Z")),
        "seeds": draw(st.lists(SEED, max_size=4)),
        "meter_source": draw(SOURCE),
        "log_level": draw(st.sampled_from(["debug", "info", "warning", "error"])),
    }
    for key, strategy in OPTIONAL.items():
        if draw(st.booleans()):
            options[key] = draw(strategy)
    return options


@given(schema_options())
def test_options_the_schema_admits_the_entry_point_admits_but_for_the_cross_field_rules(
    options: dict[str, Any],
) -> None:
    config = _yaml(APP / "config.yaml")
    check_options(config["schema"], options)
    parsed = parse_or_error(options)
    if isinstance(parsed, OptionsError):
        err = parsed
        home = options["role"] == "home"
        expected = {
            "smartpi_url": home and options["meter_source"] == "smartpi",
            "mqtt_host": home and options["meter_source"] == "mqtt",
            "tariff_file": options["role"] == "concentrator",
        }
        assert expected.get(err.option), err
        assert err.option not in options
        return
    assert parsed.role == options["role"]
    assert parsed.seeds == tuple(options["seeds"])


@given(schema_options(), st.sampled_from(["role", "chain_id", "meter_source", "log_level"]))
def test_a_value_outside_the_schema_is_refused_by_both(options: dict[str, Any], key: str) -> None:
    config = _yaml(APP / "config.yaml")
    options[key] = "Not Valid!"
    with pytest.raises(OptionError):
        check_options(config["schema"], options)
    with pytest.raises(OptionsError) as caught:
        parse_options(options)
    assert caught.value.option == key


@given(st.text(alphabet="tv0123456789abcdef@.:-[]xyz", max_size=60))
def test_the_seed_pattern_admits_what_the_node_reads_but_for_ranges_a_pattern_cannot_state(
    seed: str,
) -> None:
    pattern = _yaml(APP / "config.yaml")["schema"]["seeds"][0]
    try:
        check_options({"s": [pattern]}, {"s": [seed]})
    except OptionError:
        return
    outcome = parse_or_error({**_yaml(APP / "config.yaml")["options"], "seeds": [seed]})
    if isinstance(outcome, OptionsError):
        err = outcome
        host, _, port = seed.rpartition("@")[2].rpartition(":")
        numeric = re.fullmatch(r"[0-9.]+", host) is not None
        assert int(port) > 65535 or numeric or host.startswith("["), err


# -- image, service, profile, images, documents -------------------------------------------


def test_dockerfile_pins_the_base_builds_the_wheel_and_labels_the_image() -> None:
    text = (APP / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert len(froms) == 2, "a wheel stage and the app stage"
    for image in froms:
        assert re.fullmatch(r"ghcr\.io/home-assistant/base-python:3\.13-alpine3\.\d+", image)
    assert "BUILD_FROM" not in text
    assert ":latest" not in text
    for label in ('io.hass.type="app"', "io.hass.version=", "io.hass.arch=", "io.hass.name="):
        assert label in text
    assert "pip wheel" in text
    assert "--no-index" in text, "the app stage installs only the wheels built before"
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.MULTILINE):
        for part in source.split():
            assert (REPO / part).exists(), f"COPY {part}: the build context is the repository root"
    assert "addon/rootfs/" in text


# Docker's platform for each Supervisor architecture.
PLATFORMS = {"amd64": "linux/amd64", "aarch64": "linux/arm64"}


def test_released_images_are_built_for_every_arch_from_the_repository_root(
    config: dict[str, Any],
) -> None:
    """The Supervisor pulls ``image`` with ``{arch}`` filled in; the release workflow builds
    exactly those images, with the context the Dockerfile needs, after the suite passes."""
    workflow = yaml.safe_load((REPO / ".github/workflows/app-image.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key "on" as true
    assert triggers["push"]["tags"] == ["v*.*.*"]
    jobs = workflow["jobs"]
    assert any("./scripts/test" in step.get("run", "") for step in jobs["test"]["steps"])
    image = jobs["image"]
    assert image["needs"] == "test"
    assert image["permissions"]["packages"] == "write"
    matrix = image["strategy"]["matrix"]["include"]
    assert {row["arch"]: row["platform"] for row in matrix} == {
        arch: PLATFORMS[arch] for arch in config["arch"]
    }
    (build,) = [s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push")]
    settings = build["with"]
    assert (settings["context"], settings["file"]) == (".", "addon/Dockerfile")
    assert settings["platforms"] == "${{ matrix.platform }}"
    assert settings["push"] is True
    args = settings["build-args"].splitlines()
    assert "BUILD_ARCH=${{ matrix.arch }}" in args
    assert "BUILD_VERSION=${{ steps.version.outputs.version }}" in args
    assert "{arch}" in config["image"]
    for arch in config["arch"]:
        tag = settings["tags"].replace("${{ matrix.arch }}", arch)
        tag = tag.replace("${{ steps.version.outputs.version }}", config["version"])
        assert tag == config["image"].replace("{arch}", arch) + ":" + config["version"]
    # The version step reads config.yaml's version the way it is written there.
    (version_step,) = [s for s in image["steps"] if s.get("id") == "version"]
    pattern = re.search(r"sed -n '(s/.*/p)'", version_step["run"])
    assert pattern is not None
    read = subprocess.run(
        ["sed", "-n", pattern.group(1), str(APP / "config.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.strip() == config["version"]
    for action in [s["uses"] for s in image["steps"] + jobs["test"]["steps"] if "uses" in s]:
        assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", action), f"{action}: pin a major version"


def test_the_s6_service_runs_the_entry_point_with_the_container_environment() -> None:
    assert (SERVICE / "type").read_text().strip() == "longrun"
    assert (APP / "rootfs/etc/s6-overlay/s6-rc.d/user/contents.d/transactiva").is_file()
    assert (SERVICE / "dependencies.d/base").is_file()
    for name in ("run", "finish"):
        path = SERVICE / name
        assert path.stat().st_mode & 0o111, f"{name} must be executable"
        assert path.read_text().startswith("#!/command/with-contenv sh\n")
        checked = subprocess.run(["sh", "-n", str(path)], capture_output=True, check=False)
        assert checked.returncode == 0, checked.stderr
    run = (SERVICE / "run").read_text()
    assert "\nexec transactiva app run\n" in run
    finish = (SERVICE / "finish").read_text()
    assert "/run/s6/basedir/bin/halt" in finish


def test_the_apparmor_profile_confines_the_node() -> None:
    text = (APP / "apparmor.txt").read_text(encoding="utf-8")
    assert re.search(r"^profile transactiva flags=\(attach_disconnected,mediate_deleted\) \{$",
                     text, flags=re.MULTILINE)  # fmt: skip
    body = "\n".join(line.split("#", 1)[0] if not line.startswith("#include") else line
                     for line in text.splitlines())  # fmt: skip
    assert body.count("{") == body.count("}")
    assert "/usr/local/bin/transactiva cx -> node," in text
    node = text[text.index("profile node") :]
    for rule in ("network inet stream,", "/data/** rwk,", "/config/** r,", "/share/** r,"):
        assert rule in node
    assert "\n    file," not in node, "the node's profile lists what it may touch"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    assert (
        zlib.crc32(data[12 : 16 + length])
        == struct.unpack(">I", data[16 + length : 20 + length])[0]
    )
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_icon_and_logo_are_the_drawn_pngs(tmp_path: Path) -> None:
    assert _png_size(APP / "icon.png") in ((256, 256), (128, 128))
    width, height = _png_size(APP / "logo.png")
    assert width > height
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/app_images.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ("icon.png", "logo.png"):
        assert (tmp_path / name).read_bytes() == (APP / name).read_bytes(), name


def test_the_app_documents_every_option_and_has_a_changelog_entry(config: dict[str, Any]) -> None:
    docs = (APP / "DOCS.md").read_text(encoding="utf-8")
    for key in config["schema"]:
        assert f"`{key}`" in docs, key
    assert "172.30.32.2" in docs
    changelog = (APP / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {config['version']}" in changelog
    readme = (APP / "README.md").read_text(encoding="utf-8")
    assert "DOCS.md" in readme or "Documentation" in readme
