"""FastTrack pipeline YAML -> Airflow DAGs.

Layers, each a module with one job::

    source     YAML text -> data, remembering line:column of every key and value
    spec       pydantic models of the format (FastTrack's fields + the ``airflow:`` block)
    validate   load + check a file; every problem one ``Issue`` (file:line:column field.path: reason)
    entities   checked spec -> neutral task/pipeline description (merged envs, artifacts, trigger rule)
    factory    entities -> DAG with one ``BackendAISessionOperator`` per task (``build_operator``)
    schedule   cron/preset -> timetable; maximum number of runs -> ``end_date``
    notify     Slack notifiers (task-level callbacks)
    loader     a folder of pipeline files -> DAGs for ``dags/fasttrack_pipelines.py``
    export     spec -> FastTrack YAML;  graph_text: a DAG as text
"""
