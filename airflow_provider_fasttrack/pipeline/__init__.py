"""FastTrack pipeline YAML -> Airflow DAGs.

Layers, each a module with one job::

    spec       pydantic models of the format (FastTrack's fields + the ``airflow:`` block)
    validate   load + check a file (through ``training.yamldoc``, which keeps line:column of every value);
               every problem one ``Issue`` (file:line:column field.path: reason); cron rules live in ``schedule``
    entities   checked spec -> neutral task/pipeline description (merged envs, artifacts, trigger rule)
    factory    entities -> DAG with one ``BackendAISessionOperator`` per task (``build_operator``)
    schedule   cron/preset -> timetable; maximum number of runs -> ``end_date``
    notify     Slack notifiers (the DAG's callbacks); slack: the notifiers with escaped values
    loader     a folder of pipeline files -> DAGs for ``dags/fasttrack_pipelines.py``
    export     spec -> FastTrack YAML;  graph_text: a DAG as text
"""
