#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Static checks of the deployment files (deploy/compose.yaml,
deploy/k8s, deploy/systemd): no container daemon, no cluster, no systemd
manager needed.

- compose: `docker-compose config -q` accepts the file; the resolved
  configuration has the expected services, host networking everywhere,
  capture with exactly NET_RAW/NET_ADMIN/IPC_LOCK, everything else with no
  capability, the exporter-image services running as the Dockerfile's
  non-root user, one channel per exporter service.
- Kubernetes: every YAML file parses (safe_load_all); the base holds the
  expected kinds (Namespace, ConfigMap, capture DaemonSet, a StatefulSet per
  sink group, the headless Services) with the required security settings,
  only the two images, matching selectors, volumes and instance counts; the
  overlays' patches apply to the base (tap-node: applied here; dpdk: its
  capture arguments are the base's with input=dpdk); the shell wrappers
  derive --instance from the pod name; the ConfigMap's metaprobe.conf with
  each workload's --set overrides is accepted by the real configuration
  loader (and a broken copy is refused, so that check can fail).
- systemd: the units parse, run only binaries that `cmake --install` puts
  into /usr/bin, with the capabilities and users intended, write only the
  folders tmpfiles.d creates; the exporter template turns
  `dns.ipfix:2` into --channel dns.ipfix; `systemd-analyze verify` finds no
  problem (that part is skipped when systemd-analyze is missing).

Usage: manifests.py --repo SRC --bin-dir BUILD/bin [--work-dir DIR]
Exit 0 pass, 1 fail, 77 skip (docker-compose or python3-yaml missing).
"""

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import mp_integration as mpi  # noqa: E402

try:
    import yaml
except ImportError:
    # CMake may have picked a Python without Debian's python3-yaml
    if Path("/usr/bin/python3").exists() and os.path.realpath(sys.executable) != "/usr/bin/python3" \
            and not os.environ.get("MP_MANIFESTS_REEXEC"):
        os.environ["MP_MANIFESTS_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: python3-yaml is missing (deploy/install-deps.sh installs it)")
    sys.exit(mpi.SKIP)

check = mpi.check

CAPTURE_CAPS = {"NET_RAW", "NET_ADMIN", "IPC_LOCK"}
IMAGES = {"capture": "metaprobe/capture:latest", "exporter": "metaprobe/exporter:latest"}
# sink group -> the channel its exporter workload serves (compose and k8s)
GROUP_CHANNEL = {
    "clickstream": "clickstream.ipfix",
    "meta": "meta.ipfix",
    "dns": "dns.ipfix",
    "fullflow": "fullflow.ipfix",
    "text": "clickstream.text",
}
CONFIG_PATH = "/etc/metaprobe/metaprobe.conf"


# ----------------------------------------------------------- config loader --

class config_loader:
    """Loads a configuration through metaprobe-console, which reads it with
    the loader every binary uses (services/common: service::load_config)
    before it talks to anyone. The console is pointed at an ipc socket
    nobody serves: exit 1 "no answer" = the configuration loaded, exit 2 =
    it did not (the message names file, line and key)."""

    def __init__(self, bin_dir: Path, work: Path):
        self.console = mpi.find_bin(bin_dir, "metaprobe-console")
        self.work = work
        self.count = 0
        # the deployments' curve_keys (a container path) stand for keys
        # made here with the real metaprobe-keygen: the loader reads them
        self.keys = work / "curve-keys"
        subprocess.run([str(mpi.find_bin(bin_dir, "metaprobe-keygen")), str(self.keys)],
                       check=True, capture_output=True)

    def load(self, text: str, overrides):
        self.count += 1
        conf = self.work / f"loader-{self.count}.conf"
        conf.write_text(re.sub(r"(?m)^(\s*)curve_keys=/etc/metaprobe-keys\s*$",
                               lambda m: f"{m.group(1)}curve_keys={self.keys}", text))
        argv = [str(self.console), "--config", str(conf)]
        for o in overrides:
            argv += ["--set", o]
        argv += ["--connect", f"ipc://{self.work}/nobody-{self.count}", "--timeout", "200", "status"]
        r = mpi.run_process(argv, self.work, timeout=30)
        return r.returncode == 1 and "no answer" in r.stderr, r

    def check(self, what: str, text: str, overrides):
        ok, r = self.load(text, overrides)
        check(ok, f"{what}: the configuration loader accepts it"
                  + (f" with --set {' '.join(overrides)}" if overrides else ""),
              f"exit {r.returncode}: {r.stderr.strip()}")
        # the same file with one bad line must be refused: the check above
        # can tell a good configuration from a bad one
        bad, rb = self.load(text + "\nworkers=many\n", overrides)
        check(not bad and rb.returncode == 2 and "workers" in rb.stderr,
              f"{what}: a broken copy of it is refused (exit 2)", rb.stderr.strip())


# ----------------------------------------------------------------- compose --

def dockerfile_stage_users(dockerfile: Path):
    """{stage: last USER of that stage (None: root)}"""
    users, stage = {}, None
    for line in dockerfile.read_text().splitlines():
        m = re.match(r"\s*FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            stage = m.group(1)
            users[stage] = None
            continue
        m = re.match(r"\s*USER\s+(\S+)", line, re.I)
        if m and stage:
            users[stage] = m.group(1)
    return users


def non_root(user) -> bool:
    if not user:
        return False
    name = str(user).split(":")[0]
    return name not in ("0", "root")


def check_compose(repo: Path, work: Path, loader):
    tool = shutil.which("docker-compose")
    compose = repo / "deploy" / "compose.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAPROBE_")}
    r = mpi.run_process([tool, "-f", str(compose), "config", "-q"], repo, timeout=60, env=env)
    check(r.returncode == 0 and not r.stderr.strip(), "compose: docker-compose config -q accepts deploy/compose.yaml",
          r.stderr.strip())
    r = subprocess.run([tool, "-f", str(compose), "--profile", "tools", "config"], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=60)
    if not check(r.returncode == 0, "compose: docker-compose config resolves it", r.stderr):
        return
    cfg = yaml.safe_load(r.stdout)
    services = cfg.get("services", {})
    expected = {"capture", "receiver", "console", "keygen"} | {f"exporter-{g}" for g in GROUP_CHANNEL}
    check(set(services) == expected, "compose: services are capture, one exporter per sink group, "
          "receiver, console and keygen", sorted(services))
    for name, s in sorted(services.items()):
        if name in ("receiver", "keygen"):
            continue
        mounts = [str(v.get("target") if isinstance(v, dict) else v.split(":")[1])
                  for v in s.get("volumes", [])]
        check("/etc/metaprobe-keys" in mounts and
              "keygen" in (s.get("depends_on") or {}),
              f"compose: {name} mounts the CURVE keys and waits for keygen", (mounts, s.get("depends_on")))
    users = dockerfile_stage_users(repo / "deploy" / "docker" / "Dockerfile")
    check(users.get("capture") in (None, "0", "root"), "compose: the capture image runs as root (caps decide)",
          users)
    check(non_root(users.get("exporter")), "compose: the exporter image's USER is not root", users)
    for name, s in sorted(services.items()):
        want = "none" if name == "keygen" else "host"
        check(s.get("network_mode") == want, f"compose: {name} uses the {want} network", s.get("network_mode"))
        check(not s.get("privileged"), f"compose: {name} is not privileged")
        check(s.get("cap_drop") == ["ALL"], f"compose: {name} drops every capability", s.get("cap_drop"))
        check("no-new-privileges:true" in s.get("security_opt", []), f"compose: {name} sets no-new-privileges")
        image = s.get("image", "")
        if name == "capture":
            check(set(s.get("cap_add", [])) == CAPTURE_CAPS and len(s.get("cap_add", [])) == 3,
                  "compose: capture adds exactly NET_RAW, NET_ADMIN, IPC_LOCK", s.get("cap_add"))
            check(image.startswith("metaprobe/capture:"), "compose: capture uses the capture image", image)
            check(s.get("build", {}).get("target") == "capture", "compose: capture builds target capture")
        else:
            check(not s.get("cap_add"), f"compose: {name} adds no capability", s.get("cap_add"))
            check(image.startswith("metaprobe/exporter:"), f"compose: {name} uses the exporter image", image)
            check(non_root(s.get("user", users.get("exporter"))), f"compose: {name} runs as a non-root user",
                  s.get("user"))
        mounts = [v for v in s.get("volumes", []) if isinstance(v, dict)]
        for v in mounts:
            if v.get("target") == CONFIG_PATH:
                check(v.get("read_only") is True, f"compose: {name} mounts the configuration read-only", v)
        if "healthcheck" in s or name.startswith("exporter-") or name == "capture":
            test = " ".join(s.get("healthcheck", {}).get("test", []))
            check("metaprobe-console" in test and "status" in test,
                  f"compose: {name} has a health check through metaprobe-console", test)
    for g, ch in GROUP_CHANNEL.items():
        s = services.get(f"exporter-{g}", {})
        check(s.get("environment", {}).get("METAPROBE_CHANNEL") == ch,
              f"compose: exporter-{g} serves channel {ch}", s.get("environment"))
        check(s.get("restart") == "on-failure", f"compose: exporter-{g} restarts on failure", s.get("restart"))
        check(s.get("read_only") is True, f"compose: exporter-{g} has a read-only root file system")
        entry = " ".join(s.get("entrypoint", []))
        check("--instance auto" in entry, f"compose: exporter-{g} claims its instance (--instance auto)", entry)
        check("scale" not in s.get("deploy", {}) and "container_name" not in s,
              f"compose: exporter-{g} can be scaled (no fixed container name)")
    # the configuration every container mounts, with capture's overrides
    capture_cmd = services.get("capture", {}).get("command", [])
    loader.check("compose: deploy/compose/metaprobe.conf",
                 (repo / "deploy" / "compose" / "metaprobe.conf").read_text(),
                 set_overrides(capture_cmd))


# -------------------------------------------------------------- Kubernetes --

def load_yaml_docs(path: Path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def check_all_yaml_parses(k8s: Path):
    files = sorted(k8s.rglob("*.yaml"))
    check(len(files) >= 5, f"k8s: YAML files found under deploy/k8s ({len(files)})")
    for f in files:
        rel = f.relative_to(k8s)
        try:
            docs = load_yaml_docs(f)
        except yaml.YAMLError as e:
            check(False, f"k8s: {rel} is valid YAML", e)
            continue
        ok = bool(docs) and all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") for d in docs)
        check(ok, f"k8s: {rel} is valid YAML, every document with apiVersion and kind ({len(docs)} document(s))")
        for d in docs:
            if d.get("kind") != "Kustomization":
                check(bool(d.get("metadata", {}).get("name")), f"k8s: {rel}: {d.get('kind')} has a name")


def load_kustomization(d: Path):
    """(kustomization, [documents of its plain resources]) for a folder;
    resources that are folders (bases) are returned as paths."""
    kust = yaml.safe_load((d / "kustomization.yaml").read_text())
    docs, bases = [], []
    for res in kust.get("resources", []):
        p = (d / res).resolve()
        if p.is_dir():
            check((p / "kustomization.yaml").exists(), f"k8s: {d.name}: base {res} has a kustomization.yaml")
            bases.append(p)
        else:
            check(p.exists(), f"k8s: {d.name}: resource {res} exists")
            if p.exists():
                docs += load_yaml_docs(p)
    return kust, docs, bases


def find(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def pod_spec(w):
    return w["spec"]["template"]["spec"]


def container(w):
    return pod_spec(w)["containers"][0]


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def expand_k8s(text: str, env: dict) -> str:
    """Kubernetes' $(VAR) expansion of command/args ($$ escapes $)."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, text)


# sample values for the downward-API fields the manifests use
FIELD_SAMPLES = {"status.podIP": "10.0.0.5", "status.hostIP": "10.0.0.5"}


def sample_env(c, pod_name: str) -> dict:
    out = {}
    for name, e in env_of(c).items():
        if "value" in e:
            out[name] = expand_k8s(str(e["value"]), out)
        else:
            field = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            out[name] = pod_name if field == "metadata.name" else FIELD_SAMPLES.get(field, "")
    return out


def set_overrides(argv):
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--set"]


def run_wrapper(work: Path, argv, env: dict, binary: str):
    """Runs a container's command (a `sh -c` wrapper) with `binary` on PATH
    replaced by a recorder that prints its arguments as JSON: what the real
    binary would have been started with."""
    fake = work / "fakebin"
    fake.mkdir(exist_ok=True)
    rec = fake / binary
    rec.write_text("#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    rec.chmod(0o755)
    full_env = {"PATH": f"{fake}:/usr/bin:/bin"}
    full_env.update(env)
    r = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or not r.stdout.strip():
        return None, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def check_base(label: str, docs, loader: config_loader, work: Path, namespace: str):
    """The layout of one rendered appliance (the base, or an overlay)."""
    kinds = sorted({d["kind"] for d in docs})
    check(set(kinds) >= {"Namespace", "ConfigMap", "DaemonSet", "StatefulSet", "Service"},
          f"{label}: kinds Namespace, ConfigMap, DaemonSet, StatefulSet, Service present", kinds)
    ns = find(docs, "Namespace")
    check(len(ns) == 1 and ns[0]["metadata"]["name"] == namespace, f"{label}: one Namespace {namespace}",
          [n["metadata"]["name"] for n in ns])
    for d in docs:
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == namespace,
                  f"{label}: {d['kind']}/{d['metadata']['name']} is in namespace {namespace}",
                  d["metadata"].get("namespace"))
    cms = find(docs, "ConfigMap")
    conf = cms[0].get("data", {}).get("metaprobe.conf", "") if cms else ""
    check(len(cms) == 1 and conf.strip(), f"{label}: a ConfigMap holds metaprobe.conf")
    cm_name = cms[0]["metadata"]["name"] if cms else None

    images = set()
    workloads = find(docs, "DaemonSet") + find(docs, "StatefulSet") + find(docs, "Deployment")
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        sel = w["spec"]["selector"]["matchLabels"]
        labels = w["spec"]["template"]["metadata"]["labels"]
        check(all(labels.get(k) == v for k, v in sel.items()), f"{label}: {name}: selector matches its pods")
        for c in pod_spec(w)["containers"]:
            images.add(c["image"])
            check(c.get("imagePullPolicy") == "IfNotPresent", f"{label}: {name}: imagePullPolicy IfNotPresent")
            vols = {v["name"]: v for v in pod_spec(w).get("volumes", [])}
            vols.update({t["metadata"]["name"]: t for t in w["spec"].get("volumeClaimTemplates", [])})
            for m in c.get("volumeMounts", []):
                check(m["name"] in vols, f"{label}: {name}: volume {m['name']} is defined")
            cfgmount = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/metaprobe"]
            check(len(cfgmount) == 1 and cfgmount[0].get("readOnly") is True
                  and vols.get(cfgmount[0]["name"], {}).get("configMap", {}).get("name") == cm_name,
                  f"{label}: {name}: the ConfigMap is mounted read-only at /etc/metaprobe")
            for p in ("/run/metaprobe", "/var/log/metaprobe", "/tmp"):
                check(any(m["mountPath"] == p and not m.get("readOnly") for m in c.get("volumeMounts", [])),
                      f"{label}: {name}: a writable volume at {p}")
            keymount = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/metaprobe-keys"]
            check(len(keymount) == 1 and keymount[0].get("readOnly") is True
                  and vols.get(keymount[0]["name"], {}).get("secret", {}).get("secretName")
                  == "metaprobe-curve-keys",
                  f"{label}: {name}: the CURVE key Secret is mounted read-only at /etc/metaprobe-keys")
            for probe in ("readinessProbe", "livenessProbe"):
                cmd = " ".join(c.get(probe, {}).get("exec", {}).get("command", []))
                check("metaprobe-console" in cmd and "--process" in cmd and cmd.rstrip().endswith("status"),
                      f"{label}: {name}: {probe} runs metaprobe-console --process ... status", cmd)
    check(images == set(IMAGES.values()), f"{label}: the images are exactly {sorted(IMAGES.values())}",
          sorted(images))

    # capture
    caps = find(docs, "DaemonSet", "capture")
    if not check(len(caps) == 1, f"{label}: DaemonSet capture"):
        return
    cap = caps[0]
    spec, c = pod_spec(cap), container(cap)
    check(spec.get("hostNetwork") is True, f"{label}: capture uses the node's network (hostNetwork)")
    check(spec.get("nodeSelector", {}).get("metaprobe.io/tap") == "true",
          f"{label}: capture runs on nodes labelled metaprobe.io/tap=true", spec.get("nodeSelector"))
    sc = c.get("securityContext", {})
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{label}: capture drops every capability")
    add = sc.get("capabilities", {}).get("add", [])
    check(set(add) == CAPTURE_CAPS and len(add) == 3, f"{label}: capture adds exactly NET_RAW, NET_ADMIN, IPC_LOCK",
          add)
    check(not sc.get("privileged") and sc.get("allowPrivilegeEscalation") is False,
          f"{label}: capture is not privileged, no privilege escalation")
    check(sc.get("readOnlyRootFilesystem") is True, f"{label}: capture has a read-only root file system")
    check(c["image"] == IMAGES["capture"], f"{label}: capture uses {IMAGES['capture']}", c["image"])
    cap_env = sample_env(c, "capture-x7k2p")
    cap_args = [expand_k8s(a, cap_env) for a in c.get("command", []) + c.get("args", [])]
    check(not any("$(" in a for a in cap_args), f"{label}: capture's $(VAR) references are all defined", cap_args)
    cap_sets = set_overrides(cap_args)
    check(any(s.startswith("input=") for s in cap_sets), f"{label}: capture is given its input", cap_sets)
    check("channel_endpoint=tcp://10.0.0.5:7400" in cap_sets,
          f"{label}: capture binds the channels on its node's address", cap_sets)
    loader.check(f"{label}: capture's metaprobe.conf", conf, cap_sets)

    # the Service exporters resolve
    svc = find(docs, "Service", "capture")
    if check(len(svc) == 1, f"{label}: Service capture"):
        s = svc[0]["spec"]
        check(s.get("clusterIP") == "None", f"{label}: Service capture is headless (resolves to the node)")
        tmpl = cap["spec"]["template"]["metadata"]["labels"]
        check(s.get("selector") and all(tmpl.get(k) == v for k, v in s["selector"].items()),
              f"{label}: Service capture selects the capture pods")
        ports = sorted(p["port"] for p in s.get("ports", []))
        check(ports == list(range(7400, 7408)), f"{label}: Service capture lists channel ports 7400..7407", ports)

    # exporters: one StatefulSet per sink group
    sts = {d["metadata"]["name"]: d for d in find(docs, "StatefulSet")}
    check(set(sts) == {f"exporter-{g}" for g in GROUP_CHANNEL},
          f"{label}: one StatefulSet per sink group", sorted(sts))
    services = {d["metadata"]["name"]: d for d in find(docs, "Service")}
    for g, ch in GROUP_CHANNEL.items():
        w = sts.get(f"exporter-{g}")
        if not w:
            continue
        name = f"{label}: exporter-{g}"
        spec, c = pod_spec(w), container(w)
        gov = services.get(w["spec"].get("serviceName"))
        check(gov is not None and gov["spec"].get("clusterIP") == "None",
              f"{name}: its serviceName is a headless Service")
        check(not spec.get("hostNetwork"), f"{name}: pod network (no hostNetwork)")
        psc, sc = spec.get("securityContext", {}), c.get("securityContext", {})
        check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{name}: runAsNonRoot")
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        check(uid == 10001, f"{name}: runs as uid 10001 (the image's metaprobe user)", uid)
        check(sc.get("readOnlyRootFilesystem") is True, f"{name}: read-only root file system")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"),
              f"{name}: no capability at all")
        check(sc.get("allowPrivilegeEscalation") is False, f"{name}: no privilege escalation")
        check(c["image"] == IMAGES["exporter"], f"{name}: uses {IMAGES['exporter']}", c["image"])
        check(any(m["mountPath"] == "/var/lib/metaprobe" for m in c.get("volumeMounts", [])),
              f"{name}: an output volume at /var/lib/metaprobe")
        replicas = w["spec"].get("replicas", 1)
        env = sample_env(c, f"exporter-{g}-{replicas - 1}")
        check(env.get("METAPROBE_CHANNEL") == ch, f"{name}: serves channel {ch}", env.get("METAPROBE_CHANNEL"))
        check(env.get("METAPROBE_EXPORTERS") == str(replicas),
              f"{name}: METAPROBE_EXPORTERS equals its replicas ({replicas})", env.get("METAPROBE_EXPORTERS"))
        check(cap_env.get(f"METAPROBE_{g.upper()}_EXPORTERS") == str(replicas),
              f"{name}: capture's METAPROBE_{g.upper()}_EXPORTERS equals its replicas ({replicas})",
              cap_env.get(f"METAPROBE_{g.upper()}_EXPORTERS"))
        check(f"exporter_instances.{g}={replicas}" in cap_sets,
              f"{name}: capture is told exporter_instances.{g}", cap_sets)
        # the wrapper as the container would run it, last pod of the set
        argv = [expand_k8s(a, env) for a in c.get("command", []) + c.get("args", [])]
        got, err = run_wrapper(work, argv, env, "metaprobe-exporter")
        if not check(got is not None, f"{name}: the start command runs", err):
            continue
        opts = {got[i]: got[i + 1] for i in range(len(got) - 1) if got[i].startswith("--") and got[i] != "--set"}
        check(opts.get("--instance") == str(replicas - 1) and opts.get("--channel") == ch
              and opts.get("--config") == CONFIG_PATH,
              f"{name}: pod exporter-{g}-{replicas - 1} starts --channel {ch} --instance {replicas - 1}", got)
        sets = set_overrides(got)
        check(f"channel_endpoint=tcp://{env.get('CAPTURE_HOST')}:7400" in sets
              and services.get(env.get("CAPTURE_HOST")) is not None,
              f"{name}: connects to its capture through the Service '{env.get('CAPTURE_HOST')}'", sets)
        check(f"exporter_instances.{g}={replicas}" in sets, f"{name}: knows its {replicas} instance(s)", sets)
        loader.check(f"{name}'s metaprobe.conf", conf, sets)
        for probe in ("readinessProbe", "livenessProbe"):
            pargv = c[probe]["exec"]["command"]
            pgot, perr = run_wrapper(work, pargv, env, "metaprobe-console")
            want = f"exporter:{ch}:{replicas - 1}"
            check(pgot is not None and want in pgot and "status" in pgot,
                  f"{name}: {probe} asks {want}", pgot or perr)


# A small part of kustomize: resources, namespace, inline strategic merge
# patches (maps merged, lists of named items merged by name, other lists
# replaced) and JSON 6902 patches: enough to render tap-node/ without
# kubectl.
def strategic_merge(doc, patch):
    for k, v in patch.items():
        old = doc.get(k)
        if isinstance(v, dict) and isinstance(old, dict):
            strategic_merge(old, v)
        elif (isinstance(v, list) and isinstance(old, list) and v and old
              and all(isinstance(i, dict) and "name" in i for i in v + old)):
            by_name = {i["name"]: i for i in old}
            for item in v:
                if item["name"] in by_name:
                    strategic_merge(by_name[item["name"]], item)
                else:
                    old.append(item)
        else:
            doc[k] = copy.deepcopy(v)


def json_pointer(path: str):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(doc, ops):
    for op in ops:
        parts = json_pointer(op["path"])
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        key = (len(parent) if last == "-" else int(last)) if isinstance(parent, list) else last
        if op["op"] == "test":
            if parent[key] != op["value"]:
                raise ValueError(f"test {op['path']}: {parent[key]!r} != {op['value']!r}")
        elif op["op"] == "replace":
            parent[key]  # must exist
            parent[key] = op["value"]
        elif op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(key, op["value"])
            else:
                parent[key] = op["value"]
        elif op["op"] == "remove":
            del parent[key]
        else:
            raise ValueError(f"unsupported op {op['op']}")


def render(d: Path, label: str):
    """The documents kustomize would build from folder d (inline patches
    with a target only); None when something does not apply."""
    kust, docs, bases = load_kustomization(d)
    for b in bases:
        sub = render(b, label)
        if sub is None:
            return None
        docs += sub
    docs = copy.deepcopy(docs)
    ns = kust.get("namespace")
    if ns:
        for doc in docs:
            if doc["kind"] == "Namespace":
                doc["metadata"]["name"] = ns
            else:
                doc["metadata"]["namespace"] = ns
    for i, p in enumerate(kust.get("patches", [])):
        if "target" not in p or "patch" not in p:
            check(False, f"{label}: patch {i} is an inline patch with a target (others are not rendered here)")
            return None
        t = p["target"]
        hits = [doc for doc in docs if doc["kind"] == t.get("kind") and doc["metadata"]["name"] == t.get("name")]
        if not check(len(hits) == 1, f"{label}: patch {i} targets {t.get('kind')}/{t.get('name')} of the base"):
            return None
        try:
            body = yaml.safe_load(p["patch"])
            if isinstance(body, dict):
                check(body.get("kind") == t.get("kind") and body["metadata"]["name"] == t.get("name"),
                      f"{label}: patch {i} names its target")
                strategic_merge(hits[0], body)
            else:
                json_patch(hits[0], body)
        except (KeyError, IndexError, ValueError, TypeError) as e:
            check(False, f"{label}: patch {i} applies", e)
            return None
    return docs


def kubectl_kustomize():
    """kubectl with kustomize >= 4 (inline patches with targets), or None."""
    tool = shutil.which("kubectl")
    if not tool:
        return None
    r = subprocess.run([tool, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
    try:
        v = json.loads(r.stdout).get("kustomizeVersion", "")
    except ValueError:
        return None
    m = re.match(r"v(\d+)", v)
    return tool if m and int(m.group(1)) >= 4 else None


def check_k8s(repo: Path, loader: config_loader, work: Path):
    k8s = repo / "deploy" / "k8s"
    check_all_yaml_parses(k8s)
    base = k8s / "base"
    kust, docs, bases = load_kustomization(base)
    listed = {Path(r).name for r in kust.get("resources", [])}
    present = {f.name for f in base.glob("*.yaml")} - {"kustomization.yaml"}
    check(listed == present and not bases, "k8s: base/kustomization.yaml lists every manifest of base/",
          sorted(present ^ listed))
    check_base("k8s base", docs, loader, work, "metaprobe")

    tap = render(k8s / "tap-node", "k8s tap-node")
    if check(tap is not None, "k8s: tap-node overlay renders on the base"):
        tkust = yaml.safe_load((k8s / "tap-node" / "kustomization.yaml").read_text())
        ns = tkust.get("namespace", "")
        check(ns and ns != "metaprobe", "k8s tap-node: a namespace of its own", ns)
        check_base("k8s tap-node", tap, loader, work, ns)
        cap = find(tap, "DaemonSet", "capture")[0]
        check("kubernetes.io/hostname" in pod_spec(cap).get("nodeSelector", {}),
              "k8s tap-node: capture pinned to one node (kubernetes.io/hostname)")

    # dpdk: a strategic merge patch of the capture DaemonSet
    dk, _, dbases = load_kustomization(k8s / "dpdk")
    check([b.name for b in dbases] == ["base"], "k8s dpdk: overlay of base")
    patches = [k8s / "dpdk" / p["path"] for p in dk.get("patches", []) if "path" in p]
    check(len(patches) == 1, "k8s dpdk: one patch file")
    if patches:
        (p,) = load_yaml_docs(patches[0])
        check(p["kind"] == "DaemonSet" and p["metadata"]["name"] == "capture", "k8s dpdk: patches DaemonSet capture")
        c = container(p)
        res = c.get("resources", {})
        huge = res.get("requests", {}).get("hugepages-2Mi")
        check(huge and res.get("limits", {}).get("hugepages-2Mi") == huge and res["requests"].get("memory")
              and res["limits"].get("memory"), "k8s dpdk: hugepages-2Mi requested = limited, with memory", res)
        vols = {v["name"]: v for v in pod_spec(p).get("volumes", [])}
        hp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/dev/hugepages"]
        check(len(hp) == 1 and vols.get(hp[0]["name"], {}).get("emptyDir", {}).get("medium", "").startswith("HugePages"),
              "k8s dpdk: an emptyDir of medium HugePages at /dev/hugepages")
        base_cap = find(docs, "DaemonSet", "capture")[0]
        base_args = container(base_cap)["args"]
        env = sample_env(container(base_cap), "capture-x")
        env.update(sample_env(c, "capture-x"))
        def without(args, keys):
            out = []
            for a in args:
                if a.startswith(keys) and out and out[-1] == "--set":
                    out.pop()
                else:
                    out.append(a)
            return out
        want = without(base_args, ("input=",))
        got = without(c["args"], ("input=", "dpdk_eal_args="))
        check(got == want, "k8s dpdk: capture's arguments are the base's, input aside", (got, want))
        sets = set_overrides([expand_k8s(a, env) for a in c["args"]])
        check("input=dpdk" in sets and any(s.startswith("dpdk_eal_args=-") for s in sets),
              "k8s dpdk: input=dpdk with EAL arguments", sets)
        conf = find(docs, "ConfigMap")[0]["data"]["metaprobe.conf"]
        loader.check("k8s dpdk: capture's metaprobe.conf", conf, sets)

    kubectl = kubectl_kustomize()
    if not kubectl:
        print("note: no kubectl with kustomize >= 4: overlays rendered here only")
        return
    # a copy with the keys the operator generates (deploy/k8s/base/keys is
    # not in git): the secretGenerator needs them
    built_k8s = work / "k8s"
    shutil.rmtree(built_k8s, ignore_errors=True)
    shutil.copytree(k8s, built_k8s, ignore=shutil.ignore_patterns("keys"))
    shutil.copytree(loader.keys, built_k8s / "base" / "keys")
    for sub, ns in (("base", "metaprobe"), ("tap-node", None), ("dpdk", "metaprobe")):
        r = subprocess.run([kubectl, "kustomize", str(built_k8s / sub)], capture_output=True,
                           text=True, timeout=60)
        if not check(r.returncode == 0, f"k8s: kubectl kustomize {sub} builds", r.stderr):
            continue
        built = [d for d in yaml.safe_load_all(r.stdout) if d]
        if ns is None:
            ns = find(built, "Namespace")[0]["metadata"]["name"]
        if sub == "dpdk":
            # strategic merge result: hugepages and input=dpdk in place
            c = container(find(built, "DaemonSet", "capture")[0])
            check("input=dpdk" in c["args"] and "hugepages-2Mi" in c["resources"]["limits"],
                  "k8s: kubectl kustomize dpdk merges the DPDK capture", c["args"])
        check_base(f"k8s kubectl-built {sub}", built, loader, work, ns)
        secrets = find(built, "Secret", "metaprobe-curve-keys")
        check(len(secrets) == 1 and set(secrets[0].get("data", {})) ==
              {"server.pub", "server.key", "client.pub", "client.key"},
              f"k8s: kubectl kustomize {sub} holds the CURVE key Secret",
              [s.get("data", {}).keys() for s in secrets])
        pols = find(built, "NetworkPolicy")
        check(any(p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "capture"
                  and p["spec"]["ingress"][0]["ports"][0].get("port") == 7400
                  and p["spec"]["ingress"][0]["ports"][0].get("endPort") == 7407 for p in pols),
              f"k8s: kubectl kustomize {sub}: a NetworkPolicy admits only exporters to 7400..7407",
              pols)


# ----------------------------------------------------------------- systemd --

def parse_unit(path: Path):
    """{section: {key: [values]}} (systemd syntax: repeated keys add up;
    backslash continues a line)."""
    sections, cur, pending = {}, None, ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        m = re.match(r"\[(.+)\]$", line)
        if m:
            cur = sections.setdefault(m.group(1), {})
            continue
        if cur is None or "=" not in line:
            raise ValueError(f"{path.name}: cannot parse line: {raw}")
        k, v = line.split("=", 1)
        cur.setdefault(k.strip(), []).append(v.strip())
    return sections


def installed_binaries(repo: Path):
    text = (repo / "services" / "CMakeLists.txt").read_text()
    m = re.search(r"install\(TARGETS\s+([^)]*?)\s+RUNTIME DESTINATION", text, re.S)
    return set(m.group(1).split()) if m else set()


def expand_unit(value: str, instance: str) -> str:
    """systemd's specifier and $ escapes of an Exec line, for %i and %%."""
    out = re.sub(r"%(.)", lambda m: {"i": instance, "I": instance, "%": "%"}.get(m.group(1), m.group(0)), value)
    return out.replace("$$", "$")


def exec_binary(value: str):
    """The program an Exec line runs: the inner command of /bin/sh -c."""
    argv = shlex.split(value.lstrip("-@:+!"))
    if argv[:2] == ["/bin/sh", "-c"]:
        return shlex.split(argv[2].replace("exec ", "", 1))[0], argv
    return argv[0], argv


def check_systemd(repo: Path, bin_dir: Path, loader: config_loader, work: Path):
    sd = repo / "deploy" / "systemd"
    names = ["metaprobe.service", "metaprobe-capture.service", "metaprobe-exporter@.service", "metaprobe.target"]
    units = {}
    for n in names:
        if check((sd / n).exists(), f"systemd: {n} exists"):
            try:
                units[n] = parse_unit(sd / n)
                check(True, f"systemd: {n} parses")
            except ValueError as e:
                check(False, f"systemd: {n} parses", e)
    installed = installed_binaries(repo)
    check({"metaprobe", "metaprobe-capture", "metaprobe-exporter"} <= installed,
          "systemd: services/CMakeLists.txt installs the binaries", sorted(installed))

    sysusers = [l.split() for l in (sd / "metaprobe.sysusers").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    users = {f[1] for f in sysusers if f[0] == "u"}
    check(users == {"metaprobe"}, "systemd: sysusers.d creates user metaprobe", users)
    tmpdirs = {}
    for l in (sd / "metaprobe.tmpfiles").read_text().splitlines():
        f = l.split()
        if f and not f[0].startswith("#"):
            tmpdirs[f[1]] = f
            check(f[0] == "d" and f[3] in users and f[4] in users,
                  f"systemd: tmpfiles.d makes {f[1]} for user metaprobe", f)
    check({"/run/metaprobe", "/var/lib/metaprobe", "/var/log/metaprobe"} <= set(tmpdirs),
          "systemd: tmpfiles.d makes /run, /var/lib and /var/log/metaprobe", sorted(tmpdirs))

    caps = {"CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_IPC_LOCK"}
    for n, u in units.items():
        if not n.endswith(".service"):
            continue
        s = u.get("Service", {})
        one = lambda k: (s.get(k) or [""])[-1]  # noqa: E731
        check(one("Type") == "simple", f"systemd: {n}: Type=simple")
        prog, argv = exec_binary(one("ExecStart"))
        check(prog.startswith("/usr/bin/") and Path(prog).name in installed,
              f"systemd: {n}: ExecStart runs an installed binary ({prog})", sorted(installed))
        check("--config" in " ".join(argv) and CONFIG_PATH in " ".join(argv), f"systemd: {n}: reads {CONFIG_PATH}")
        check(one("ExecReload") == "/bin/kill -HUP $MAINPID", f"systemd: {n}: reload is SIGHUP")
        check(one("Restart") in ("on-failure", "always"), f"systemd: {n}: restarts", one("Restart"))
        check(one("User") in users and one("Group") in users, f"systemd: {n}: runs as user metaprobe")
        check(one("ProtectSystem") == "strict" and one("NoNewPrivileges") == "yes",
              f"systemd: {n}: ProtectSystem=strict, NoNewPrivileges")
        rw = " ".join(s.get("ReadWritePaths", [])).split()
        check(rw and set(rw) <= set(tmpdirs), f"systemd: {n}: writes only tmpfiles.d's folders", rw)
        bounding = set(one("CapabilityBoundingSet").split())
        ambient = set(one("AmbientCapabilities").split())
        if n == "metaprobe-exporter@.service":
            check(not bounding and not ambient, f"systemd: {n}: no capability", (bounding, ambient))
        else:
            check(bounding == caps and ambient == caps,
                  f"systemd: {n}: exactly CAP_NET_RAW, CAP_NET_ADMIN, CAP_IPC_LOCK", (bounding, ambient))
        check("metaprobe.target" in " ".join(u.get("Install", {}).get("WantedBy", []))
              or n == "metaprobe.service", f"systemd: {n}: installed into its target")
    t = units.get("metaprobe.target", {}).get("Unit", {})
    check("metaprobe-capture.service" in " ".join(t.get("Wants", [])), "systemd: metaprobe.target wants capture")
    check("metaprobe.service" in " ".join(t.get("Conflicts", [])),
          "systemd: metaprobe.target conflicts with the appliance unit")

    # the exporter template: instance string -> channel
    tmpl = units.get("metaprobe-exporter@.service", {}).get("Service", {}).get("ExecStart", [""])[-1]
    for inst, ch in (("dns.ipfix", "dns.ipfix"), ("dns.ipfix:2", "dns.ipfix"), ("clickstream.text", "clickstream.text")):
        argv = shlex.split(expand_unit(tmpl, inst).replace("/usr/bin/metaprobe-exporter", "metaprobe-exporter"))
        got, err = run_wrapper(work, argv, {}, "metaprobe-exporter")
        opts = {got[i]: got[i + 1] for i in range(len(got) - 1)} if got else {}
        check(opts.get("--channel") == ch and opts.get("--instance") == "auto"
              and opts.get("--instance-file", "").startswith("/run/metaprobe/"),
              f"systemd: metaprobe-exporter@{inst}.service runs --channel {ch} --instance auto", got or err)

    # the host configuration the units are written for
    conf = (sd / "metaprobe.conf").read_text()
    loader.check("systemd: deploy/systemd/metaprobe.conf", conf, [])
    kv = dict(l.split("=", 1) for l in conf.splitlines() if "=" in l and not l.lstrip().startswith("#"))
    ep = kv.get("channel_endpoint", "")
    if ep == "auto":  # ipc://<run_dir>/channel
        ep = f"ipc://{kv.get('run_dir', './run').rstrip('/')}/channel"
    check(ep.startswith("tcp://") or ep.startswith("ipc:///run/metaprobe/"),
          "systemd: channels outside /tmp (each unit has a private /tmp)", ep)
    for k in ("run_dir", "log_dir"):
        check(kv.get(k) in tmpdirs, f"systemd: {k} is a tmpfiles.d folder", kv.get(k))
    for k, v in kv.items():
        if k.endswith("_file") or k.endswith("_path"):
            check(v.startswith("/var/lib/metaprobe/"), f"systemd: {k} is under /var/lib/metaprobe", v)

    # systemd's own parser; binaries pointed at the build's (which exist)
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("note: systemd-analyze missing: systemd verify part skipped")
        return
    vdir = work / "units"
    vdir.mkdir(exist_ok=True)
    for n in names:
        text = re.sub(r"/usr/bin/(metaprobe[a-z-]*)",
                      lambda m: str(mpi.find_bin(bin_dir, m.group(1))), (sd / n).read_text())
        (vdir / n).write_text(text)
    # (verify takes "a:b" as a path and an alias; ':' in an instance name is
    # fine for systemd itself, so the template is verified as dns.ipfix)
    verify = ["metaprobe.service", "metaprobe-capture.service", "metaprobe-exporter@dns.ipfix.service",
              "metaprobe.target"]
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{vdir}:", SYSTEMD_LOG_LEVEL="notice")
    r = subprocess.run([tool, "verify", "--man=no"] + verify, env=env, capture_output=True, text=True,
                       timeout=60)
    ours = [l for l in (r.stdout + r.stderr).splitlines() if str(vdir) in l or "metaprobe" in l]
    check(r.returncode == 0 and not ours, "systemd: systemd-analyze verify finds no problem in the units",
          "\n".join(ours) or r.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=str(HERE.parent.parent))
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    args = ap.parse_args(argv)
    if not shutil.which("docker-compose"):
        print("SKIP: docker-compose is missing (deploy/install-deps.sh installs it)")
        return mpi.SKIP
    repo = Path(args.repo).resolve()
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "deploy-manifests")
    bin_dir = Path(args.bin_dir).resolve()
    loader = config_loader(bin_dir, work)
    check_compose(repo, work, loader)
    check_k8s(repo, loader, work)
    check_systemd(repo, bin_dir, loader, work)
    if mpi.failures:
        print(f"{len(mpi.failures)} check(s) failed")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("all deployment files pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
