"""Shared helpers of the chart tests (test_chart.py, test_chart_dryrun.py).

They drive the real helm binary (the one e2e/controlplane/build.sh caches, or $HELM) and read
its output with PyYAML. A missing prerequisite (helm, PyYAML, openssl) is a skip: exit 77,
which CTest reports as "Skipped" (SKIP_RETURN_CODE).
"""
import os
import subprocess
import sys

SKIP = 77
KUBE_VERSION = "1.35.4"  # e2e/controlplane/versions.env: the control plane the chart is tested on
NAMESPACE = "kccl-system"
APP_VERSION = "0.1.0"

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    print("chart tests: PyYAML is missing (python3 -m pip install pyyaml, or apt-get install "
          "python3-yaml); skipped", file=sys.stderr)
    sys.exit(SKIP)

ROOT = os.path.abspath(os.environ.get("KCCL_SOURCE_DIR") or
                       os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CHART = os.path.join(ROOT, "helm", "kccl")


class Failure(Exception):
    """An assertion of a chart test failed; the message says what and where."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def skip(msg):
    print("SKIPPED: " + msg, file=sys.stderr)
    sys.exit(SKIP)


def helm_bin():
    """$HELM, then helm on PATH, then the cached build; None when there is none."""
    cand = [os.environ.get("HELM")]
    for d in os.environ.get("PATH", "").split(os.pathsep):
        cand.append(os.path.join(d, "helm"))
    try:
        out = subprocess.run([os.path.join(ROOT, "e2e", "controlplane", "build.sh"),
                              "--print-bin-dir"], capture_output=True, text=True, timeout=30)
        cand.append(os.path.join(out.stdout.strip(), "helm"))
    except (OSError, subprocess.SubprocessError):
        pass
    for c in cand:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


HELM = None


def need_helm():
    global HELM
    HELM = helm_bin()
    if not HELM:
        skip("no helm binary: build it with e2e/controlplane/build.sh or set HELM")
    return HELM


def run(cmd, timeout=120, env=None):
    """Runs cmd; returns (rc, stdout, stderr)."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def helm_template(args, namespace=NAMESPACE, extra=(), env=None):
    """helm template of the chart; returns (rc, stdout, stderr)."""
    cmd = [HELM, "template", "kccl", CHART, "--namespace", namespace,
           "--kube-version", KUBE_VERSION] + list(args) + list(extra)
    return run(cmd, env=env)


def render(args, namespace=NAMESPACE, extra=(), env=None):
    """Renders the chart and returns its objects (a list of dicts); fails on a render error."""
    rc, out, err = helm_template(args, namespace, extra, env)
    check(rc == 0, "helm template %s failed (rc %d): %s" % (" ".join(args), rc, err.strip()))
    return parse(out)


def parse(text):
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        check(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and
              d.get("metadata", {}).get("name"),
              "rendered object without apiVersion/kind/metadata.name: %r" % (d,))
    return docs


def find(docs, kind, name=None, namespace=None):
    """Objects of the given kind (and name, namespace)."""
    return [d for d in docs if d["kind"] == kind and
            (name is None or d["metadata"]["name"] == name) and
            (namespace is None or d["metadata"].get("namespace") == namespace)]


def one(docs, kind, name=None, namespace=None):
    got = find(docs, kind, name, namespace)
    check(len(got) == 1, "expected exactly one %s %s/%s, found %d" %
          (kind, namespace or "*", name or "*", len(got)))
    return got[0]


def normalize_rules(rules):
    """RBAC rules as a sorted list of (apiGroups, resources, resourceNames, verbs) tuples."""
    out = []
    for r in rules or []:
        out.append((tuple(sorted(r.get("apiGroups", []))), tuple(sorted(r.get("resources", []))),
                    tuple(sorted(r.get("resourceNames", []))), tuple(sorted(r.get("verbs", [])))))
    return sorted(out)


def main(tests, argv):
    """Runs the named test function(s) of `tests` (a dict name -> callable)."""
    names = argv[1:] or sorted(tests)
    for n in names:
        if n not in tests:
            print("unknown test %r; known: %s" % (n, ", ".join(sorted(tests))), file=sys.stderr)
            return 2
    failed = 0
    for n in names:
        try:
            tests[n]()
            print("ok   %s" % n)
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (n, e))
    return 1 if failed else 0
