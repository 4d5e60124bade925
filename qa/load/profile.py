"""Load profiles (``profiles/NAME.yaml``): scenario + rate over time + pass criteria.

The profile is the user's whole description of a load run, so it is validated strictly
before any call is placed: unknown keys and wrong types are errors, and the first problem
is ONE line naming the file and the dotted field (``profiles/x.yaml: rate.cps: must be
> 0``, exit 2). Durations are written as people write them (``30s``, ``250ms``, ``1h30m``)
and stored as float seconds, so ``model_dump`` round-trips through ``run.json``.
The shipped profiles in ``profiles/`` document every field.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Literal, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, StrictBool,
                      ValidationError, field_validator)

from qa import paths
from qa.errors import BadInput, ConfigError
from qa.load import shape as shapes
from qa.load.shape import EPS, Shape
from qa.validation import load_yaml_mapping, pydantic_problem

PROFILE_DIR = "profiles"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DURATION_RE = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?"
    r"(?:(?P<ms>\d+(?:\.\d+)?)ms)?$")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class DurationError(BadInput, ValueError):
    """Not a duration: exit 2 from the CLI, and a ValueError pydantic reports on the field."""


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``"30s"``, ``"250ms"``, ``"5m"``, ``"8h"``, ``"1h30m"`` or a number of seconds."""
    problem = DurationError(f"{value!r} is not a duration (e.g. 30s, 250ms, 5m, 1h30m or seconds >= 0)")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise problem
    seconds: float
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        match = _DURATION_RE.match(text)
        if text and match and any(match.groupdict().values()):
            return math.fsum(float(v) * _UNITS[k] for k, v in match.groupdict().items() if v)
        try:
            seconds = float(text)
        except ValueError:
            raise problem from None
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise problem
    return seconds


# -- field types with one-line messages -----------------------------------------------------------
def _number(value: Any) -> float:
    """Numbers only (True is not 1 call/s); numeric text is taken (PyYAML reads 1e3 as text)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"must be a number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"must be a number, not {value!r}")
    return float(value)


def _integer(value: Any) -> int:
    number = _number(value)
    if not number.is_integer():
        raise ValueError(f"must be a whole number, not {value!r}")
    return int(number)


def _bounds(lo: float | None = None, hi: float | None = None, *, open_lo: bool = False) -> Callable[[Any], Any]:
    """A check with the message a user reads: ``must be > 0``, ``must be between 0 and 100``."""
    def check(value: Any) -> Any:
        low_ok = lo is None or (value > lo if open_lo else value >= lo)
        if low_ok and (hi is None or value <= hi):
            return value
        if lo is not None and hi is not None:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        raise ValueError(f"must be {'>' if open_lo else '>='} {lo:g}")
    return check


def _number_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'must be quoted text (digits, optional leading +), e.g. "15550001234", not {value!r}')
    if not re.fullmatch(r"\+?[0-9]{1,32}", value):
        raise ValueError(f"{value!r} is not a number (digits, optional leading +)")
    return value


def _accounts(value: Any) -> Any:
    """``"all"`` or users; checked here so an error names the item, not pydantic's union."""
    if value == "all":
        return value
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError('must be "all" or a list of account users')
    for i, user in enumerate(value):
        if not isinstance(user, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", user):
            raise ValueError(f"{user!r} (user {i + 1} of the list) is not an account user "
                             "(letters, digits, _ . + -)")
    if len(set(value)) != len(value):
        raise ValueError("a user is listed twice")
    return tuple(value)


Positive = Annotated[float, BeforeValidator(_number), AfterValidator(_bounds(0, open_lo=True))]  # cps, ms, MB/h
NonNegative = Annotated[float, BeforeValidator(_number), AfterValidator(_bounds(0))]
Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_bounds(0, open_lo=True))]
Fraction = Annotated[float, BeforeValidator(_number), AfterValidator(_bounds(0, 1))]
Percent = Annotated[float, BeforeValidator(_number), AfterValidator(_bounds(0, 100))]
Count = Annotated[int, BeforeValidator(_integer), AfterValidator(_bounds(1))]
Accounts = Annotated[Union[Literal["all"], tuple[str, ...]], BeforeValidator(_accounts)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- scenario -------------------------------------------------------------------------------------
class Destination(_Strict):
    """A called number and its share of the calls."""

    number: Annotated[str, BeforeValidator(_number_text)]
    weight: Count = 1
    expect: Annotated[int, BeforeValidator(_integer), AfterValidator(_bounds(100, 699))] = 200


class ScenarioSpec(_Strict):
    sipp: Annotated[str, Field(min_length=1)]
    transport: Literal["udp", "tcp"] = "udp"
    destinations: list[Destination]
    accounts: Accounts = "all"
    hold: Duration = 0.0
    media: StrictBool = False
    call_timeout: PositiveDuration = 32.0

    @field_validator("destinations")
    @classmethod
    def _some(cls, value: list[Destination]) -> list[Destination]:
        if not value:
            raise ValueError("give at least one destination")
        return value


# -- rate (one model per shape; `shape` is the discriminator) -----------------------------------------
class _Rate(_Strict):
    """Every shape: which fields are rates and which are times (for --rate / --duration)."""

    CPS: ClassVar[tuple[str, ...]] = ()
    TIMES: ClassVar[tuple[str, ...]] = ()
    max_concurrent: Count | None = None

    def _compiled(self) -> Shape:
        """The rate as a function of time (each shape builds its own, from qa.load.shape)."""
        raise NotImplementedError

    def _scaled(self, names: tuple[str, ...], factor: float, old: float, new: float) -> dict[str, float]:
        """Every named value times ``factor``; the one that was exactly ``old`` becomes ``new`` exactly."""
        return {n: new if getattr(self, n) == old else getattr(self, n) * factor for n in names}

    def with_peak(self, cps: float) -> "_Rate":
        peak = self._compiled().peak()
        return self.model_copy(update=self._scaled(self.CPS, cps / peak, peak, cps))

    def with_duration(self, seconds: float) -> "_Rate":
        total = self._compiled().duration_s
        return self.model_copy(update=self._scaled(self.TIMES, seconds / total, total, seconds))


class ConstantRate(_Rate):
    CPS: ClassVar = ("cps",)
    TIMES: ClassVar = ("duration",)
    shape: Literal["constant"]
    cps: Positive
    duration: PositiveDuration

    def _compiled(self) -> Shape:
        return shapes.constant(self.cps, self.duration)


class RampRate(_Rate):
    CPS: ClassVar = ("from_cps", "to_cps")
    TIMES: ClassVar = ("duration", "hold")
    shape: Literal["ramp"]
    from_cps: NonNegative = 0.0
    to_cps: NonNegative
    duration: PositiveDuration
    hold: Duration = 0.0

    def _compiled(self) -> Shape:
        return shapes.ramp(self.from_cps, self.to_cps, self.duration, self.hold)


class StepRate(_Rate):
    CPS: ClassVar = ("start_cps", "step_cps")
    TIMES: ClassVar = ("step_duration",)
    shape: Literal["step"]
    start_cps: Positive
    step_cps: Positive
    step_duration: PositiveDuration
    steps: Count

    def _compiled(self) -> Shape:
        return shapes.step(self.start_cps, self.step_cps, self.step_duration, self.steps)


class SpikeRate(_Rate):
    CPS: ClassVar = ("base_cps", "spike_cps")
    TIMES: ClassVar = ("duration", "spike_at", "spike_duration")
    shape: Literal["spike"]
    base_cps: NonNegative
    spike_cps: Positive
    duration: PositiveDuration
    spike_at: Duration
    spike_duration: PositiveDuration

    def _compiled(self) -> Shape:
        return shapes.spike(self.base_cps, self.spike_cps, self.duration, self.spike_at, self.spike_duration)


class Stage(_Strict):
    duration: PositiveDuration
    cps: NonNegative
    ramp: StrictBool = False


class StagesRate(_Rate):
    shape: Literal["stages"]
    stages: list[Stage]

    @field_validator("stages")
    @classmethod
    def _some_load(cls, value: list[Stage]) -> list[Stage]:
        if not value:
            raise ValueError("give at least one stage")
        if all(s.cps <= 0 for s in value):
            raise ValueError("every stage is at 0 calls/s")
        return value

    def _compiled(self) -> Shape:
        return shapes.stages([(s.duration, s.cps, s.ramp) for s in self.stages])

    def with_peak(self, cps: float) -> "StagesRate":
        peak = self._compiled().peak()
        return self.model_copy(update={"stages": [
            s.model_copy(update={"cps": cps if s.cps == peak else s.cps * cps / peak}) for s in self.stages]})

    def with_duration(self, seconds: float) -> "StagesRate":
        factor = seconds / self._compiled().duration_s
        stages = [s.model_copy(update={"duration": s.duration * factor}) for s in self.stages]
        if len(stages) == 1:
            stages = [stages[0].model_copy(update={"duration": seconds})]
        return self.model_copy(update={"stages": stages})


RateSpec = Annotated[Union[ConstantRate, RampRate, StepRate, SpikeRate, StagesRate], Field(discriminator="shape")]


# -- criteria and run settings -------------------------------------------------------------------------
class Percentiles(_Strict):
    p95: Positive | None = None
    p99: Positive | None = None


class Criteria(_Strict):
    """Pass criteria; a key left out is not judged."""

    asr_min: Fraction | None = None
    failed_pct_max: Percent | None = None
    pdd_ms: Percentiles | None = None
    setup_ms: Percentiles | None = None
    retransmissions_pct_max: Percent | None = None
    cdr_loss_pct_max: Percent | None = None
    achieved_pct_min: Percent | None = None
    memory_slope_max_mb_per_h: Positive | None = None
    breaking_point_min_cps: Positive | None = None


class Generator(_Strict):
    sipp_per_worker: Count = 1
    buff_size: Annotated[int, BeforeValidator(_integer), AfterValidator(_bounds(4096))] = 4194304
    cpu_quota: Annotated[float, BeforeValidator(_number), AfterValidator(_bounds(0.01, 1))] | None = None


class Capture(_Strict):
    enabled: StrictBool = True
    ring_files: Count = 10
    ring_file_mb: Count = 100


class Resources(_Strict):
    every: PositiveDuration = 5.0


class Judging(_Strict):
    window: PositiveDuration = 5.0
    settle: Duration = 2.0
    warmup: Duration = 0.0
    stop_on_break: StrictBool = False
    min_calls: Count = 20


class LoadProfile(_Strict):
    """A validated profile; ``name`` and ``path`` say where it came from.

    Build it with :func:`load_profile` or :func:`parse_profile`: they add the rules that tie
    two sections together (warm-up shorter than the run, ...) and remember the file.
    """

    description: str | None = None
    kind: Literal["stress", "load", "soak", "spike", "ceiling", "custom"]
    scenario: ScenarioSpec
    rate: RateSpec
    criteria: Criteria = Criteria()
    generator: Generator = Generator()
    capture: Capture = Capture()
    resources: Resources = Resources()
    judging: Judging = Judging()
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def name(self) -> str:
        """The file's stem (``stress``); ``profile`` for one built from data alone."""
        return self._path.stem if self._path else "profile"

    def shape(self) -> Shape:
        return self.rate._compiled()

    def scenario_path(self) -> Path:
        """The SIPp scenario file: a name is ``sipp/NAME.xml`` (here, then the repository's);
        a path is relative to the profile's directory."""
        sipp = self.scenario.sipp
        if sipp.endswith(".xml") or "/" in sipp:
            path = Path(sipp)
            if not path.is_absolute() and self._path is not None:
                path = self._path.parent / path
            if not path.is_file():
                raise ConfigError(self._path or "profile", "scenario.sipp", f"{path}: no such file")
            return path
        if not _NAME_RE.match(sipp):
            raise ConfigError(self._path or "profile", "scenario.sipp",
                              f"{sipp!r} is neither a scenario name nor a path to an .xml file")
        for folder in (Path("sipp"), paths.SIPP_DIR):
            if (folder / f"{sipp}.xml").is_file():
                return folder / f"{sipp}.xml"
        raise ConfigError(self._path or "profile", "scenario.sipp",
                          f"no scenario {sipp!r}: no sipp/{sipp}.xml here or in {paths.SIPP_DIR}")


# -- loading ----------------------------------------------------------------------------------------------
def parse_profile(data: dict[str, Any], path: Path | str | None = None) -> LoadProfile:
    """The validated profile from parsed YAML (or a ``run.json``'s ``profile``); no file access.

    Any problem is one ConfigError naming ``path`` and the dotted field.
    """
    try:
        profile = LoadProfile.model_validate(data)
    except ValidationError as exc:
        loc, problem = pydantic_problem(exc, data)
        raise ConfigError(path or "profile", loc, problem) from None
    if problem := _across_fields(profile):
        raise ConfigError(path or "profile", *problem)
    profile._path = Path(path) if path is not None else None
    return profile


def _across_fields(profile: LoadProfile) -> tuple[str, str] | None:
    """Rules that tie two fields together, reported on the field a user would change."""
    rate, judging = profile.rate, profile.judging
    if isinstance(rate, RampRate) and max(rate.from_cps, rate.to_cps) <= 0:
        return "rate.to_cps", "must be > 0 (or from_cps > 0): a ramp from 0 to 0 places no call"
    if isinstance(rate, SpikeRate):
        if rate.spike_cps <= rate.base_cps:
            return "rate.spike_cps", f"must be above rate.base_cps ({rate.base_cps:g})"
        if rate.spike_at + rate.spike_duration > rate.duration + EPS:
            return "rate.spike_duration", (f"the spike ends at {rate.spike_at + rate.spike_duration:g} s, "
                                           f"after rate.duration ({rate.duration:g} s)")
    if judging.settle >= judging.window:
        return "judging.settle", f"must be shorter than judging.window ({judging.window:g} s)"
    if judging.warmup >= (total := profile.shape().duration_s):
        return "judging.warmup", f"must be shorter than the run ({total:g} s)"
    return None


def find_profile(name_or_path: str) -> Path:
    """``./profiles/NAME.yaml``, then the repository's; a path is taken as it is."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise BadInput(f"profile file {name_or_path}: no such file")
        return path
    if not _NAME_RE.match(name_or_path):
        raise BadInput(f"profile {name_or_path!r}: not a name (letters, digits, '.', '_', '-') nor a .yaml path")
    folders = (Path(PROFILE_DIR), paths.ROOT / PROFILE_DIR)
    for folder in folders:
        if (folder / f"{name_or_path}.yaml").is_file():
            return folder / f"{name_or_path}.yaml"
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})
    raise BadInput(f"unknown profile {name_or_path!r}: no {PROFILE_DIR}/{name_or_path}.yaml here or in "
                   f"{paths.ROOT / PROFILE_DIR} (available: {', '.join(known) or 'none'})")


def load_profile(name_or_path: str) -> LoadProfile:
    """The profile by name or path, validated, its scenario file found."""
    path = find_profile(name_or_path)
    profile = parse_profile(load_yaml_mapping(path, "kind:, scenario:, rate:, ..."), path)
    profile.scenario_path()
    return profile


def apply_overrides(profile: LoadProfile, *, rate: float | None = None,
                    duration: float | None = None) -> LoadProfile:
    """``--rate``: every cps scaled so the peak is ``rate``; ``--duration``: every time
    stretched so the run lasts ``duration`` seconds. The result is validated again."""
    spec = profile.rate
    if rate is not None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise BadInput(f"--rate {rate}: must be > 0 calls/s")
        spec = spec.with_peak(float(rate))
    if duration is not None:
        if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
            raise BadInput(f"--duration {duration}: must be > 0 seconds")
        spec = spec.with_duration(float(duration))
    data = profile.model_copy(update={"rate": spec}).model_dump()
    try:
        result = parse_profile(data, profile.path)
    except ConfigError as exc:
        raise BadInput(f"--rate/--duration: {exc.field}: {exc.problem}") from None
    _steps_can_be_judged(result, duration)
    return result


def _steps_can_be_judged(profile: LoadProfile, duration: float | None) -> None:
    """A stress or ceiling run is judged step by step, minus ``judging.settle`` seconds after
    each change: a ``--duration`` that squeezes the steps below that leaves nothing to judge."""
    if duration is None or profile.kind not in ("stress", "ceiling"):
        return
    shortest = min((p.end - p.start for p in profile.shape().plateaus()), default=None)
    if shortest is not None and shortest < profile.judging.settle + 1.0 - EPS:
        raise BadInput(f"--duration {duration:g}: each step would last {shortest:g} s, not more than "
                       f"judging.settle ({profile.judging.settle:g} s) + 1 s: no step could be judged")
