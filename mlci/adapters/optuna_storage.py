"""Optuna study storage for `mlci tune`: open it, create or join the study, claim trials.

Every storage failure becomes ExternalServiceError (exit 3) naming the
storage without its password; Optuna's and SQLAlchemy's own messages are
stripped of URLs and of the password before anyone sees them.

Trials are claimed from the study's queue of WAITING trials with the same
atomic state change Optuna's `Study.ask` uses (`set_trial_state_values` to
RUNNING succeeds for exactly one caller), but without `ask`'s fallback of
creating a new trial: the study is created with `n-trials` queued trials,
so the budget is exact however many jobs share it.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator

from mlci.errors import ExternalServiceError
from mlci.redact import redact
from mlci.tune.settings import Storage

SERVICE = "Optuna storage"
CONNECT_TIMEOUT_SECONDS = 10
SCHEMA_RACE_ATTEMPTS = 5


def clean_message(exc: BaseException, storage: Storage) -> str:
    from mlci.adapters.mlflow import strip_url_credentials

    text = str(exc) or type(exc).__name__
    # SQLAlchemy appends its own doc links and the failing SQL; the first lines say what happened.
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("(Background")]
    text = " ".join(lines[:2])
    text = redact(strip_url_credentials(text), extra=storage.secrets)
    return text if len(text) <= 400 else text[:400] + "..."


def _hint(storage: Storage) -> str:
    if storage.kind == "journal":
        return "check tune.journal-file: its folder must be writable (and on one machine for every job)"
    return ("check the MLCI_TUNE_STORAGE variable (a database URL such as postgresql://user:password@host:5432/db), "
            "that the database server is up and reachable from the runner, and the user's password")


@contextlib.contextmanager
def storage_errors(storage: Storage, action: str) -> Iterator[None]:
    """Storage failures -> ExternalServiceError naming the redacted storage and the likely fix."""
    import optuna

    try:
        yield
    except ExternalServiceError:
        raise
    except (optuna.exceptions.StorageInternalError, OSError) as exc:
        raise ExternalServiceError(SERVICE, storage.display, f"could not {action}: {clean_message(exc, storage)}",
                                   hint=_hint(storage)) from None
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "psycopg", "pymysql", "MySQLdb")):
            raise ExternalServiceError(SERVICE, storage.display,
                                       f"could not {action}: {clean_message(exc, storage)}",
                                       hint=_hint(storage)) from None
        raise


def quiet_optuna() -> None:
    """Optuna's INFO lines and experimental-API warnings would drown the job log; mlci says what matters."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(storage: Storage, *, heartbeat_seconds: int, grace_seconds: int,
                 stale_callback: Callable | None):
    """The Optuna storage object; RDB storages get Optuna's heartbeat and a stale-trial callback."""
    import optuna

    quiet_optuna()
    with storage_errors(storage, "open the study storage"):
        if storage.kind == "journal":
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            storage.path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(storage.path)))
        engine_kwargs: dict = {"pool_pre_ping": True}
        if storage.url.startswith(("postgresql", "mysql")):
            engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        for attempt in range(SCHEMA_RACE_ATTEMPTS):
            try:
                return optuna.storages.RDBStorage(
                    storage.url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_seconds,
                    grace_period=grace_seconds,
                    heartbeat_stale_trial_callback=stale_callback,
                )
            except Exception as exc:
                if attempt + 1 == SCHEMA_RACE_ATTEMPTS or not lost_schema_race(exc):
                    raise
                # Another `parallel:` job created the same tables a moment ago; now they exist, so retrying
                # only loads them.
                time.sleep(0.2 + random.random() * 0.5)
        raise AssertionError("unreachable")


def lost_schema_race(exc: BaseException) -> bool:
    """True for the error a database gives when two jobs create Optuna's tables (or enum types) at once."""
    if not type(exc).__module__.startswith("sqlalchemy"):
        return False
    text = str(exc).lower()
    return "already exists" in text or "duplicate key" in text or "duplicate entry" in text


def has_heartbeat(backend) -> bool:
    from optuna.storages import RDBStorage

    return isinstance(backend, RDBStorage) and backend.get_heartbeat_interval() is not None


def create_or_load(backend, storage: Storage, name: str, direction: str, sampler, pruner):
    """(study, created): exactly one caller creates a study of that name; the others load it."""
    import optuna

    with storage_errors(storage, f"create or load study {name!r}"):
        try:
            study = optuna.create_study(study_name=name, storage=backend, direction=direction, sampler=sampler,
                                        pruner=pruner, load_if_exists=False)
            return study, True
        except optuna.exceptions.DuplicatedStudyError:
            return optuna.load_study(study_name=name, storage=backend, sampler=sampler, pruner=pruner), False


def load_existing(backend, storage: Storage, name: str, sampler=None, pruner=None):
    """The study, or None when there is none of that name."""
    import optuna

    with storage_errors(storage, f"load study {name!r}"):
        try:
            return optuna.load_study(study_name=name, storage=backend, sampler=sampler, pruner=pruner)
        except KeyError:
            return None


def trial_id_of(trial) -> int:
    """The storage id of a live trial object (Optuna keeps it on the object; no round trip)."""
    return trial._trial_id


def trial_id(study, number: int) -> int:
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def claim_waiting_trial(study, before_trial: Callable[[int], None] | None = None):
    """A queued trial, now RUNNING and ours alone; None when the queue is empty (the budget is used up).

    `before_trial(number)` runs once the claim is won, before the trial object (and its sampling) exists.
    """
    import optuna
    from optuna.trial import TrialState

    # Study.ask does the same through these private fields (it pops the queue, then falls back to a new trial).
    backend, study_id = study._storage, study._study_id
    for frozen in backend.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if not backend.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        if before_trial is not None:
            before_trial(frozen.number)
        return optuna.trial.Trial(study, frozen._trial_id)
    return None


def fail_trial(study, number: int) -> bool:
    """RUNNING -> FAIL for a trial whose job is gone; False when someone else already finished it."""
    import optuna
    from optuna.trial import TrialState

    try:
        return bool(study._storage.set_trial_state_values(trial_id(study, number), state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def fail_stale_trials(study) -> None:
    """Optuna's own heartbeat check: silent RUNNING trials become FAIL and go through the stale callback."""
    import optuna

    optuna.storages.fail_stale_trials(study)


class Heartbeat:
    """Records a trial's heartbeat every interval while the trial runs (Optuna's RDB heartbeat table)."""

    def __init__(self, backend, trial_id_: int):
        self.backend, self.trial_id = backend, trial_id_
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def __enter__(self) -> Heartbeat:
        if has_heartbeat(self.backend):
            interval = self.backend.get_heartbeat_interval()
            self._thread = threading.Thread(target=self._beat, args=(interval,), name="mlci-tune-heartbeat",
                                            daemon=True)
            self._thread.start()
        return self

    def _beat(self, interval: float) -> None:
        while True:
            try:
                self.backend.record_heartbeat(self.trial_id)
            except Exception as exc:  # the trial goes on; the next beat may get through
                self.error = exc
            if self._stop.wait(interval):
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
