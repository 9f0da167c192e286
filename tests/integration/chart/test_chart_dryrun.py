#!/usr/bin/env python3
"""The chart and the raw manifests against a REAL kube-apiserver (e2e/controlplane/cp.sh):

1. the CommGroup CRD (helm/kccl/crds/) is applied for real, so CommGroup objects validate;
2. `kubectl apply --dry-run=server` of: the chart with the example on, the chart with the kind
   scenario's values (e2e/kind/values.yaml), deploy/examples/indexed-job.yaml and
   deploy/manifests/kccl.yaml (less its cert-manager objects: this control plane has no
   cert-manager CRDs) — the apiserver runs its full validation and admission on each object
   (RBAC rules, the webhook's CEL matchConditions, the CRD's OpenAPI schema) and stores nothing;
3. the webhook certificate's reuse across upgrades: with the TLS Secret present in the release
   namespace, `helm template --dry-run=server` (lookup on) renders that Secret unchanged and a
   caBundle equal to its ca.crt; with an incomplete Secret it generates a new pair.
Everything this test creates (the release namespace, the Secret, the CRD when it was absent) is
deleted at the end. Skips (77) when the control plane is down or the CRD file is missing.

`install` (its own CTest entry) is a real helm install / upgrade / uninstall of the defaults:
every object is created, the authorizer grants and refuses what the RBAC says (kubectl auth
can-i for the operator's and the sidecar's ServiceAccounts), the upgrade keeps the webhook
certificate, the uninstall leaves
nothing but the CRD (helm keeps crds/). The example stays off: no kubelet here runs pods.
"""
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chart_common as c  # noqa: E402
from chart_common import check, one  # noqa: E402

CRD_FILE = os.environ.get("KCCL_CHART_CRD_FILE") or os.path.join(c.CHART, "crds",
                                                                  "commgroups.kccl.io.yaml")
CP = os.path.join(c.ROOT, "e2e", "controlplane", "cp.sh")


def cp_env():
    """KUBECONFIG and the bin dir of the running control plane; skips when it is down."""
    try:
        st = subprocess.run([CP, "status"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        c.skip("cp.sh status failed to run: %s" % e)
    if st.returncode != 0:
        c.skip("the control plane is not up (e2e/controlplane/cp.sh up)")
    out = subprocess.run(["bash", "-c", 'eval "$("$0" env)" && printf "%s\\n%s\\n" '
                          '"$KUBECONFIG" "$KCCL_CP_BIN"', CP],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "cp.sh env failed: %s" % out.stderr)
    kubeconfig, bindir = out.stdout.splitlines()[:2]
    return kubeconfig, bindir


class Cluster:
    def __init__(self, kubeconfig, bindir):
        self.env = dict(os.environ, KUBECONFIG=kubeconfig)
        self.kubectl = os.path.join(bindir, "kubectl")

    def k(self, args, stdin=None, timeout=60, ok=True):
        p = subprocess.run([self.kubectl] + args, input=stdin, capture_output=True, text=True,
                           timeout=timeout, env=self.env)
        if ok:
            check(p.returncode == 0, "kubectl %s failed: %s" % (" ".join(args), p.stderr.strip()))
        return p

    def exists(self, args):
        return self.k(["get"] + args, ok=False).returncode == 0

    def dry_run(self, text, what):
        """Server-side dry run of a multi-document manifest; returns the number of objects."""
        p = self.k(["apply", "--dry-run=server", "-f", "-"], stdin=text, timeout=120, ok=False)
        check(p.returncode == 0, "server dry run of %s rejected:\n%s" % (what, p.stderr.strip()))
        n = sum(1 for ln in p.stdout.splitlines() if ln.endswith("(server dry run)"))
        want = len([d for d in c.parse(text)])
        check(n == want, "server dry run of %s: %d objects reported, %d sent:\n%s" %
              (what, n, want, p.stdout))
        return n


def settle_namespace(cl):
    """A release namespace left Terminating by an earlier run: wait until it is gone (90 s)."""
    p = cl.k(["get", "namespace", c.NAMESPACE, "-o", "jsonpath={.status.phase}"], ok=False)
    if p.returncode == 0 and p.stdout.strip() == "Terminating":
        cl.k(["wait", "--for=delete", "namespace/" + c.NAMESPACE, "--timeout=90s"], timeout=100,
             ok=False)


def dump(docs):
    return "---\n".join(c.yaml.safe_dump(d, sort_keys=False) for d in docs)


def check_reuse(cl):
    """Cert reuse through lookup: the existing Secret wins; an incomplete one is replaced."""
    first = c.render([])
    sec = one(first, "Secret", "kccl-webhook-tls", c.NAMESPACE)
    cl.k(["apply", "-f", "-"], stdin=dump([sec]))
    lookup_env = dict(cl.env)
    again = c.render(["--dry-run=server"], env=lookup_env)
    sec2 = one(again, "Secret", "kccl-webhook-tls", c.NAMESPACE)
    check(sec2["data"] == sec["data"], "upgrade render did not reuse the existing TLS Secret")
    mwc = one(again, "MutatingWebhookConfiguration", "kccl-sidecar-injector")
    check(mwc["webhooks"][0]["clientConfig"]["caBundle"] == sec["data"]["ca.crt"],
          "upgrade render: caBundle is not the existing Secret's ca.crt")
    # A Secret lacking ca.crt (someone's own, incomplete) is not trusted: a fresh pair.
    partial = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
               "metadata": {"name": "kccl-webhook-tls", "namespace": c.NAMESPACE},
               "data": {"tls.crt": sec["data"]["tls.crt"], "tls.key": sec["data"]["tls.key"]}}
    cl.k(["replace", "-f", "-"], stdin=json.dumps(partial))
    third = c.render(["--dry-run=server"], env=lookup_env)
    sec3 = one(third, "Secret", "kccl-webhook-tls", c.NAMESPACE)
    check(sec3["data"]["tls.crt"] != sec["data"]["tls.crt"] and sec3["data"].get("ca.crt"),
          "an incomplete TLS Secret was reused")
    mwc3 = one(third, "MutatingWebhookConfiguration", "kccl-sidecar-injector")
    check(mwc3["webhooks"][0]["clientConfig"]["caBundle"] == sec3["data"]["ca.crt"],
          "regenerated pair: caBundle does not match the new ca.crt")
    check(base64.b64decode(sec3["data"]["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE-----"),
          "regenerated ca.crt is not a PEM certificate")
    cl.k(["delete", "secret", "-n", c.NAMESPACE, "kccl-webhook-tls", "--wait=false"])


def test_dryrun():
    c.need_helm()
    kubeconfig, bindir = cp_env()
    if not os.path.isfile(CRD_FILE):
        c.skip("no CRD file %s (owned by the operator; set KCCL_CHART_CRD_FILE)" % CRD_FILE)
    cl = Cluster(kubeconfig, bindir)
    settle_namespace(cl)
    made_crd = not cl.exists(["crd", "commgroups.kccl.io"])
    made_ns = not cl.exists(["namespace", c.NAMESPACE])
    try:
        if made_crd:
            cl.k(["apply", "-f", CRD_FILE])
        cl.k(["wait", "--for=condition=Established", "crd/commgroups.kccl.io", "--timeout=30s"],
             timeout=40)
        if made_ns:
            cl.k(["create", "namespace", c.NAMESPACE])
        counts = {}
        _, out, err = c.helm_template(["--set", "example.enabled=true"])
        check(out, "helm template (example on) failed: %s" % err)
        counts["chart+example"] = cl.dry_run(out, "the chart with example.enabled=true")
        _, out, err = c.helm_template(["-f", os.path.join(c.ROOT, "e2e", "kind", "values.yaml")])
        check(out, "helm template (kind values) failed: %s" % err)
        counts["chart+kind"] = cl.dry_run(out, "the chart with e2e/kind/values.yaml")
        ex = open(os.path.join(c.ROOT, "deploy", "examples", "indexed-job.yaml")).read()
        counts["examples"] = cl.dry_run(ex, "deploy/examples/indexed-job.yaml")
        raw = [d for d in c.parse(open(os.path.join(c.ROOT, "deploy", "manifests",
                                                    "kccl.yaml")).read())
               if not d["apiVersion"].startswith("cert-manager.io/")]
        counts["manifests"] = cl.dry_run(dump(raw), "deploy/manifests/kccl.yaml")
        # nothing of the dry runs was stored
        check(not cl.exists(["mutatingwebhookconfiguration", "kccl-sidecar-injector"]),
              "a dry run stored the webhook configuration")
        check(not cl.exists(["-n", "default", "commgroup", "kccl-demo"]),
              "a dry run stored the example CommGroup")
        check_reuse(cl)
        print("server dry runs accepted: %s" % counts)
    finally:
        # waited for (with a deadline), so that the next run does not meet a Terminating one
        if made_ns:
            cl.k(["delete", "namespace", c.NAMESPACE, "--timeout=90s"], timeout=100, ok=False)
        if made_crd:
            cl.k(["delete", "crd", "commgroups.kccl.io", "--timeout=60s"], timeout=70, ok=False)


# What a release of the chart creates (default values), by kind/name and namespace ("" = cluster).
RELEASE_OBJECTS = [
    ("", "mutatingwebhookconfiguration/kccl-sidecar-injector"),
    ("", "clusterrole/kccl-operator"), ("", "clusterrolebinding/kccl-operator"),
    (c.NAMESPACE, "deployment/kccl-operator"), (c.NAMESPACE, "service/kccl-webhook"),
    (c.NAMESPACE, "secret/kccl-webhook-tls"), (c.NAMESPACE, "serviceaccount/kccl-operator"),
    (c.NAMESPACE, "role/kccl-operator-leader-election"),
    (c.NAMESPACE, "rolebinding/kccl-operator-leader-election"),
    ("default", "serviceaccount/kccl-sidecar"), ("default", "role/kccl-sidecar"),
    ("default", "rolebinding/kccl-sidecar"),
]


def present(cl):
    return [o for ns, o in RELEASE_OBJECTS if cl.exists((["-n", ns] if ns else []) + [o])]


# (ServiceAccount namespace/name, verb, resource, namespace, allowed?): what the apiserver's
# authorizer answers for the installed RBAC (SubjectAccessReview through kubectl auth can-i).
OP = c.NAMESPACE + "/kccl-operator"
SC = "default/kccl-sidecar"
GRANTS = [
    (OP, "watch", "pods", "team-x", True), (OP, "patch", "pods", "team-x", True),
    (OP, "create", "secrets", "team-x", True), (OP, "create", "events", "team-x", True),
    (OP, "create", "commgroups.kccl.io", "team-x", True),
    (OP, "update", "commgroups.kccl.io/status", "team-x", True),
    (OP, "update", "leases.coordination.k8s.io", c.NAMESPACE, True),
    (OP, "get", "secrets", "team-x", False), (OP, "list", "secrets", "team-x", False),
    (OP, "delete", "pods", "team-x", False), (OP, "delete", "commgroups.kccl.io", "team-x", False),
    (OP, "update", "leases.coordination.k8s.io", "team-x", False),
    (OP, "create", "pods", "team-x", False),
    (OP, "update", "commgroups.kccl.io", "team-x", False),
    (OP, "patch", "commgroups.kccl.io/status", "team-x", False),
    (SC, "patch", "pods", "default", True), (SC, "watch", "pods", "default", True),
    (SC, "create", "events", "default", True), (SC, "get", "commgroups.kccl.io", "default", True),
    (SC, "get", "secrets", "default", False), (SC, "delete", "pods", "default", False),
    (SC, "patch", "pods", "team-x", False), (SC, "update", "commgroups.kccl.io", "default", False),
]


def check_grants(cl):
    for sa, verb, res, ns, want in GRANTS:
        sa_ns, sa_name = sa.split("/")
        base, _, sub = res.partition("/")
        args = ["auth", "can-i", verb, base, "-n", ns,
                "--as=system:serviceaccount:%s:%s" % (sa_ns, sa_name)]
        p = cl.k(args + (["--subresource=" + sub] if sub else []), ok=False)
        got = p.stdout.strip() == "yes"
        check(got == want, "%s %s %s in %s: allowed=%s, want %s (%s)" %
              (sa, verb, res, ns, got, want, (p.stdout + p.stderr).strip()))


def get_json(cl, args):
    return json.loads(cl.k(["get", "-o", "json"] + args).stdout)


def test_install():
    """A real helm install / upgrade / uninstall (no example: nothing runs pods here). The
    upgrade must keep the webhook certificate (lookup) and the uninstall must leave nothing
    but the CRD (helm keeps crds/)."""
    c.need_helm()
    kubeconfig, bindir = cp_env()
    if not os.path.isfile(CRD_FILE):
        c.skip("no CRD file %s (owned by the operator)" % CRD_FILE)
    cl = Cluster(kubeconfig, bindir)
    settle_namespace(cl)
    made_crd = not cl.exists(["crd", "commgroups.kccl.io"])
    made_ns = not cl.exists(["namespace", c.NAMESPACE])
    check(not cl.exists(["mutatingwebhookconfiguration", "kccl-sidecar-injector"]),
          "a kccl webhook configuration exists already on this control plane; not touching it")
    helm = [c.HELM, "--namespace", c.NAMESPACE]
    installed = False
    try:
        rc, out, err = c.run(helm + ["install", "kccl", c.CHART, "--create-namespace",
                                     "--timeout", "60s"], env=cl.env, timeout=120)
        check(rc == 0, "helm install failed: %s" % err.strip())
        installed = True
        check(present(cl) == [o for _, o in RELEASE_OBJECTS],
              "helm install did not create every object; present: %s" % present(cl))
        check(cl.exists(["crd", "commgroups.kccl.io"]), "helm install did not install the CRD")
        check_grants(cl)
        sec1 = get_json(cl, ["-n", c.NAMESPACE, "secret", "kccl-webhook-tls"])["data"]
        mwc1 = get_json(cl, ["mutatingwebhookconfiguration", "kccl-sidecar-injector"])
        check(mwc1["webhooks"][0]["clientConfig"]["caBundle"] == sec1["ca.crt"],
              "installed caBundle != the Secret's ca.crt")
        rc, out, err = c.run(helm + ["upgrade", "kccl", c.CHART, "--reuse-values", "--set",
                                     "operator.logLevel=debug", "--timeout", "60s"],
                             env=cl.env, timeout=120)
        check(rc == 0, "helm upgrade failed: %s" % err.strip())
        sec2 = get_json(cl, ["-n", c.NAMESPACE, "secret", "kccl-webhook-tls"])["data"]
        mwc2 = get_json(cl, ["mutatingwebhookconfiguration", "kccl-sidecar-injector"])
        check(sec2 == sec1, "helm upgrade replaced the webhook certificate")
        check(mwc2["webhooks"][0]["clientConfig"]["caBundle"] == sec1["ca.crt"],
              "helm upgrade changed the caBundle")
        dep = get_json(cl, ["-n", c.NAMESPACE, "deployment", "kccl-operator"])
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        check("--log-level=debug" in args, "helm upgrade did not apply the new value: %s" % args)
        rc, out, err = c.run(helm + ["uninstall", "kccl", "--wait", "--timeout", "90s"],
                             env=cl.env, timeout=120)
        check(rc == 0, "helm uninstall failed: %s" % err.strip())
        installed = False
        check(not present(cl), "left after helm uninstall: %s" % present(cl))
        check(cl.exists(["crd", "commgroups.kccl.io"]), "helm uninstall removed the CRD")
        print("install, upgrade (certificate kept), uninstall (nothing left) ok")
    finally:
        if installed:
            c.run(helm + ["uninstall", "kccl", "--wait", "--timeout", "90s"], env=cl.env,
                  timeout=120)
        if made_ns:
            cl.k(["delete", "namespace", c.NAMESPACE, "--timeout=90s"], timeout=100, ok=False)
        if made_crd:
            cl.k(["delete", "crd", "commgroups.kccl.io", "--timeout=60s"], timeout=70, ok=False)


if __name__ == "__main__":
    sys.exit(c.main({"dryrun": test_dryrun, "install": test_install}, sys.argv))
