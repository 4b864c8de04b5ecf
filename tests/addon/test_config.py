"""The app's files against the Supervisor's rules -- of the oldest release the app claims and
of the newest one read: config.yaml, translations, the Dockerfile the Supervisor builds from
the app folder and what it installs, s6 service, AppArmor profile, images, documentation."""

from __future__ import annotations

import json
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
from ledger_core.cli.ha_app import (
    API_PORT,
    DATABASES,
    INGRESS_PROXY,
    OPTION_NAMES,
    P2P_PORT,
    SEARCH_ROOTS,
    OptionsError,
    parse_options,
)
from tests.addon.helpers import parse_or_error
from tests.addon.supervisor_schema import (
    ARCHES,
    BACKUP_MODES,
    BOOTS,
    BUILD_ARGS,
    BUILD_FROM_DEFAULT_UNTIL,
    BUILD_YAML_DEPRECATED_SINCE,
    DOCKER_PLATFORMS,
    MAP_MOUNT_POINTS,
    MAP_TYPE_REPLACED,
    NEWEST_SUPERVISOR,
    OLDEST_SUPERVISOR,
    PORT_KEY_RE,
    REQUIRED_KEYS,
    SLUG_RE,
    STARTUPS,
    TRANSLATION_KEYS,
    WATCHDOG_RE,
    OptionError,
    SchemaError,
    at_least,
    check_map_entry,
    check_options,
    config_keys,
    needs_build,
    parse_element,
    parse_schema,
    version_key,
)

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "addon"
SERVICE = APP / "rootfs/etc/s6-overlay/s6-rc.d/transactiva"
SUPERVISORS = (OLDEST_SUPERVISOR, NEWEST_SUPERVISOR)
STAGING = "/tmp/transactiva"  # noqa: S108 - where the image build stages its inputs


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


@pytest.mark.parametrize(
    ("text", "supervisor", "accepted"),
    [
        ("int(-5,5)", "2025.04.0", False),
        ("float(-1.5,)", "2026.03.2", False),
        ("int(-5,5)", "2026.03.3", True),
        ("float(-1.5,.5)", NEWEST_SUPERVISOR, True),
        ("int(0,5)", "2025.04.0", True),
    ],
)
def test_negative_bounds_are_read_from_supervisor_2026_03_3_on(
    text: str, supervisor: str, accepted: bool
) -> None:
    if accepted:
        assert parse_element(text, supervisor).low is not None
    else:
        with pytest.raises(SchemaError, match=r"negative bounds need Supervisor 2026\.03\.3"):
            parse_element(text, supervisor)


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


@pytest.mark.parametrize("supervisor", SUPERVISORS)
def test_config_has_only_keys_the_supervisor_knows_and_the_required_ones(
    config: dict[str, Any], supervisor: str
) -> None:
    known = config_keys(supervisor)
    assert set(config) <= known, f"Supervisor {supervisor} drops {set(config) - known}"
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
    assert isinstance(config["timeout"], int)
    assert 10 <= config["timeout"] <= 300


@pytest.mark.parametrize("supervisor", SUPERVISORS)
def test_every_map_entry_is_read_by_the_oldest_and_the_newest_supervisor(
    config: dict[str, Any], supervisor: str
) -> None:
    kinds = [check_map_entry(entry, supervisor) for entry in config["map"]]
    assert kinds == ["addon_config", "share"]
    assert all(entry["read_only"] is True for entry in config["map"])


def test_a_deprecated_map_type_is_used_only_while_its_replacement_is_too_new(
    config: dict[str, Any],
) -> None:
    """``addon_config`` is deprecated from 2026.07.1 for ``app_config``, which 2025.04.0 refuses
    (a type it does not know makes the whole config.yaml invalid): the app claims 2025.04.0."""
    for entry in config["map"]:
        if entry["type"] in MAP_TYPE_REPLACED:
            replacement, since = MAP_TYPE_REPLACED[entry["type"]]
            assert not at_least(OLDEST_SUPERVISOR, since), (
                f"every claimed Supervisor reads {replacement!r}: use it"
            )
            with pytest.raises(SchemaError, match=f"known from Supervisor {since}"):
                check_map_entry({**entry, "type": replacement}, OLDEST_SUPERVISOR)
            check_map_entry({**entry, "type": replacement}, NEWEST_SUPERVISOR)


def test_the_mapped_folders_are_where_the_entry_point_looks_for_files(
    config: dict[str, Any],
) -> None:
    """genesis_file and tariff_file are found in the app's configuration folder, then /share."""
    mounted = [Path(MAP_MOUNT_POINTS[entry["type"]]) for entry in config["map"]]
    assert not any("path" in entry for entry in config["map"])
    assert tuple(mounted) == SEARCH_ROOTS


@pytest.mark.parametrize(
    ("entry", "supervisor", "error"),
    [
        ({"type": "app_config"}, "2026.07.0", "known from Supervisor 2026.07.1"),
        ({"type": "all_app_configs"}, "2025.04.0", "known from Supervisor 2026.07.1"),
        ({"type": "addon_config"}, "2023.11.0", "need Supervisor 2023.12.1"),
        ({"type": "homeassistant"}, NEWEST_SUPERVISOR, "not a map type"),
        ({"read_only": True}, NEWEST_SUPERVISOR, "a mapping with a type"),
        ({"type": "share", "mode": "rw"}, NEWEST_SUPERVISOR, "unknown keys"),
        ({"type": "share", "read_only": "yes"}, NEWEST_SUPERVISOR, "read_only"),
        ({"type": "app_config"}, "2026.07.1", None),
        ({"type": "addon_config", "path": "/cfg"}, "2023.12.1", None),
    ],
)
def test_map_entries_as_each_supervisor_release_reads_them(
    entry: dict[str, Any], supervisor: str, error: str | None
) -> None:
    if error is None:
        assert check_map_entry(entry, supervisor) == entry["type"]
    else:
        with pytest.raises(SchemaError, match=error):
            check_map_entry(entry, supervisor)


def test_the_app_requires_the_oldest_home_assistant_its_integration_supports(
    config: dict[str, Any],
) -> None:
    """The Supervisor offers the app only where Home Assistant is at least ``homeassistant``;
    hacs.json states the integration's minimum, and the app is made for that integration."""
    hacs = json.loads((REPO / "hacs.json").read_text(encoding="utf-8"))
    assert isinstance(config["homeassistant"], str)
    assert config["homeassistant"] == hacs["homeassistant"]
    assert version_key(config["homeassistant"]) >= (2025, 4, 0)


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
    for supervisor in SUPERVISORS:
        parse_schema(schema, supervisor=supervisor)
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
    "concentrator_url": st.from_regex(r"\Ahttps://[a-z]{1,10}\.example:8765\Z"),
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


def dockerfile_steps(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: continuations joined, comments dropped."""
    steps: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, inside continuations too
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, arguments = (current + stripped).partition(" ")
        steps.append((keyword.upper(), " ".join(arguments.split())))
        current = ""
    assert not current, "the Dockerfile ends inside a continuation"
    return steps


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_steps((APP / "Dockerfile").read_text(encoding="utf-8"))


def test_the_supervisor_builds_the_app_from_its_folder(
    config: dict[str, Any], dockerfile: list[tuple[str, str]]
) -> None:
    """No ``image``: every Supervisor builds ``Dockerfile`` with the app folder as the context,
    for the device's architecture, passing only BUILD_VERSION and BUILD_ARCH (and, before
    2026.04.0, BUILD_FROM=...{arch}-base:latest, which has no Python: so the base is fixed)."""
    assert needs_build(config)
    assert set(config["arch"]) <= set(DOCKER_PLATFORMS)
    for name in ("build.yaml", "build.yml", "build.json"):
        assert not (APP / name).exists(), (
            f"{name} is deprecated from Supervisor {BUILD_YAML_DEPRECATED_SINCE}"
        )
    assert not list(APP.glob("Dockerfile.*")), "one Dockerfile for every architecture"
    assert {kind for kind, _ in dockerfile} <= {"FROM", "ARG", "ENV", "COPY", "RUN", "LABEL"}
    (base,) = [arguments for kind, arguments in dockerfile if kind == "FROM"]
    assert re.fullmatch(r"ghcr\.io/home-assistant/base-python:3\.13-alpine3\.\d+", base)
    assert not any("BUILD_FROM" in arguments for _, arguments in dockerfile), (
        f"Supervisors before {BUILD_FROM_DEFAULT_UNTIL} would put a base without Python there"
    )
    declared = {arguments.split("=")[0] for kind, arguments in dockerfile if kind == "ARG"}
    assert declared <= BUILD_ARGS
    for kind, arguments in dockerfile:
        if kind != "COPY":
            continue
        assert not arguments.startswith("--"), arguments
        *sources, _target = arguments.split()
        for source in sources:
            path = (APP / source).resolve()
            assert path.is_relative_to(APP), f"COPY {source}: outside the app folder"
            assert path.exists(), f"COPY {source}: missing from the app folder"
    labels = " ".join(arguments for kind, arguments in dockerfile if kind == "LABEL")
    assert "io.hass." not in labels, "the Supervisor sets the io.hass.* labels itself"


def _requirements() -> list[str]:
    text = (APP / "requirements.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_the_image_installs_the_pinned_wheels_of_the_apps_version(
    config: dict[str, Any], dockerfile: list[tuple[str, str]]
) -> None:
    copies = dict(
        arguments.split()
        for kind, arguments in dockerfile
        if kind == "COPY" and STAGING in arguments
    )
    assert copies == {
        "requirements.txt": f"{STAGING}/requirements.txt",
        "wheels/": f"{STAGING}/wheels/",
    }
    (install,) = [arguments for kind, arguments in dockerfile if kind == "RUN"]
    words = install.split()
    assert words[:2] == ["pip", "install"]
    assert "--only-binary=:all:" in words, "nothing is compiled on the device"
    assert words[words.index("--requirement") + 1] == f"{STAGING}/requirements.txt"
    assert words[words.index("--find-links") + 1] == f"{STAGING}/wheels"
    assert not {"--no-index", "--index-url", "--extra-index-url", "--pre"} & set(words)
    assert install.endswith("&& transactiva --version"), "the build fails if the app cannot run"
    pins = _requirements()
    assert pins[0] == f"transactiva=={config['version']}"
    for line in pins:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*==[0-9][0-9A-Za-z.+!]*", line), line
    assert len({line.partition("==")[0] for line in pins}) == len(pins)
    # git keeps the folder the Dockerfile copies, and never a developer's wheels in it.
    assert (APP / "wheels/README.md").is_file()
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "addon/wheels/*.whl" in ignored


def _run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_pins_are_the_runtime_needs_at_the_locked_versions(tmp_path: Path) -> None:
    """requirements.txt is what scripts/app_requirements.py writes from pyproject.toml, the
    installed metadata and the lock: re-running it changes nothing."""
    out = tmp_path / "requirements.txt"
    result = _run_script(str(REPO / "scripts/app_requirements.py"), str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == (APP / "requirements.txt").read_text(
        encoding="utf-8"
    ), "run scripts/app_requirements.py"
    names = {line.partition("==")[0] for line in _requirements()}
    assert {"aiohttp", "numpy", "pynacl", "lark", "pvlib", "scipy", "pandas"} <= names


def test_the_pin_writer_names_what_the_lock_lacks(tmp_path: Path) -> None:
    lock = tmp_path / "test.txt"
    locked = (REPO / "requirements/test.txt").read_text(encoding="utf-8").splitlines()
    lock.write_text("\n".join(line for line in locked if not line.startswith("numpy==")))
    out = tmp_path / "requirements.txt"
    result = _run_script(str(REPO / "scripts/app_requirements.py"), "--lock", str(lock), str(out))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "app_requirements.py: numpy: transactiva needs it at run time, the lock lacks it"
    )
    assert not out.exists()


def test_the_image_carries_the_documented_example_tariffs() -> None:
    shipped = APP / "rootfs/usr/share/transactiva/tariffs"
    documented = REPO / "docs/tariffs"
    assert sorted(p.name for p in shipped.iterdir()) == sorted(p.name for p in documented.iterdir())
    for path in documented.iterdir():
        assert (shipped / path.name).read_bytes() == path.read_bytes(), f"copy docs/{path.name}"
    assert (shipped / "example-residential-tou.toml").is_file()  # named in the app's errors


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


def test_the_docs_state_the_supported_versions_in_english_and_spanish(
    config: dict[str, Any],
) -> None:
    """What config.yaml and hacs.json claim, and the oldest Supervisor checked, as users read it."""
    year, month, _ = version_key(config["homeassistant"])
    newer = {"en": "or newer", "es": "o posterior"}
    documents = {
        APP / "DOCS.md": "en",
        REPO / "docs/es/app.md": "es",
        REPO / "docs/home-assistant.md": "en",
        REPO / "docs/es/home-assistant.md": "es",
    }
    for path, language in documents.items():
        text = " ".join(path.read_text(encoding="utf-8").split())
        assert f"Home Assistant {year}.{month} {newer[language]}" in text, path
        assert f"Supervisor {OLDEST_SUPERVISOR} {newer[language]}" in text, path
    for path in (APP / "DOCS.md", REPO / "docs/es/app.md"):
        text = " ".join(path.read_text(encoding="utf-8").split())
        for arch in config["arch"]:
            assert arch in text, path
        assert NEWEST_SUPERVISOR in text, f"{path}: the newest Supervisor whose rules are checked"
    readme = " ".join((APP / "README.md").read_text(encoding="utf-8").split())
    assert f"Home Assistant {year}.{month} or newer with Supervisor {OLDEST_SUPERVISOR}" in readme
