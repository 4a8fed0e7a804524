"""Run a user's DAG in a test: what Airflow's ``dag.test()`` expects to find in the database, written first.

Airflow 3's ``dag.test()`` runs the DAG as the DAG processor stored it: a row for the DAG bundle it
belongs to (``dags-folder`` by default) and the DAG serialized under that bundle. A test has
neither: a fresh ``airflow db migrate`` writes no bundle rows, and nothing has parsed the test's DAG.
Writing them takes Airflow internals that move between versions, so they are written here, and the
functions that know about versions are kept to :func:`_dagbag_api`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dagrun import DagRun
    from airflow.sdk import DAG

#: The bundle that ``[core] dags_folder`` makes; DAGs are written under it when it is configured.
DAGS_FOLDER_BUNDLE = "dags-folder"


def run_dag(dag: DAG, **kwargs: Any) -> DagRun:
    """Run ``dag`` once, in this process, with ``dag.test(**kwargs)``, and return the DAG run.

    Before the run, the configured DAG bundles and ``dag`` (under the ``dags-folder`` bundle, or the
    first one configured) are written to the metadata database, as the DAG processor would. The DAG
    may come from :func:`load_dag` or be built in the test.

    :param kwargs: passed to ``dag.test()``, for example ``run_conf={...}`` or ``logical_date=...``.
    :return: the finished DAG run; ``dag_run.state`` is ``"success"`` or ``"failed"``, and
        ``dag_run.get_task_instances()`` has each task's state and XCom.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()  # dag rows point at a bundle row: a fresh database has none
    new_bag, write_bag = _dagbag_api()
    bag = new_bag(collect_dags=False)
    bag.bag_dag(dag)
    write_bag(bag, _bundle_name(manager))
    return dag.test(**kwargs)


def load_dag(path: str | Path, dag_id: str | None = None) -> DAG:
    """Parse a DAG file as the DAG processor would and return one of its DAGs.

    :param path: the DAG file, absolute or relative to the working directory.
    :param dag_id: the DAG to return; may be left out when the file defines exactly one.
    :raises FileNotFoundError: there is no such file.
    :raises ImportError: the file does not import; the message has Airflow's traceback.
    :raises LookupError: the file has no DAG ``dag_id`` (or, without ``dag_id``, not exactly one DAG).
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"no DAG file at {file}")
    new_bag, _ = _dagbag_api()
    # safe_mode off: the file is named, so Airflow's "does it mention airflow and dag" guess is moot.
    bag = new_bag(dag_folder=str(file), safe_mode=False)
    if bag.import_errors:
        errors = "\n".join(bag.import_errors.values())
        raise ImportError(f"the DAG file {file} does not import:\n{errors}")
    if dag_id is None:
        if len(bag.dags) != 1:
            raise LookupError(f"{file} defines {len(bag.dags)} DAGs ({sorted(bag.dags)}): pass dag_id")
        return next(iter(bag.dags.values()))
    if dag_id not in bag.dags:
        raise LookupError(f"{file} has no DAG {dag_id!r}; it defines {sorted(bag.dags)}")
    return bag.dags[dag_id]


def _bundle_name(manager: DagBundlesManager) -> str:
    names = [bundle.name for bundle in manager.get_all_dag_bundles()]
    if DAGS_FOLDER_BUNDLE in names:
        return DAGS_FOLDER_BUNDLE
    for name in names:
        if name != "example_dags":  # Airflow's own examples, added when [core] load_examples is on
            return name
    raise RuntimeError("no DAG bundle is configured ([dag_processor] dag_bundle_config_list is empty)")


def _dagbag_api() -> tuple[Callable[..., Any], Callable[[Any, str], None]]:
    """A ``DagBag`` factory and a function writing a bag's DAGs under a bundle, for this Airflow.

    Airflow 3.2 moved ``DagBag`` and ``sync_bag_to_db`` from ``airflow.models.dagbag`` to
    ``airflow.dag_processing.dagbag`` (3.3 keeps a deprecated alias for the class only); 3.0 had the
    method ``DagBag.sync_to_db`` instead of the function; ``include_examples`` went away in 3.3.
    """
    try:
        from airflow.dag_processing import dagbag as module
    except ImportError:
        from airflow.models import dagbag as module  # type: ignore[no-redef]
    dag_bag_class: Any = module.DagBag

    def new_bag(**kwargs: Any) -> Any:
        if "include_examples" in inspect.signature(dag_bag_class).parameters:
            # Its default follows [core] load_examples: on in a fresh Airflow home, which would
            # parse Airflow's example DAGs into every bag.
            kwargs["include_examples"] = False
        return dag_bag_class(**kwargs)

    sync_bag_to_db = getattr(module, "sync_bag_to_db", None)

    def write_bag(bag: Any, bundle_name: str) -> None:
        for dag in bag.dags.values():
            if getattr(dag, "relative_fileloc", None) is None:
                # Set by DagBag only for DAGs it parsed from a file (to the path itself when the bag
                # has no bundle path); 3.0 cannot serialize a DAG built in a test without it.
                dag.relative_fileloc = dag.fileloc
        if sync_bag_to_db is None:
            bag.sync_to_db(bundle_name, None)
        else:
            sync_bag_to_db(bag, bundle_name, None)

    return new_bag, write_bag
