#!/usr/bin/env python3
"""Chart tests that need helm but no apiserver: lint, render assertions over several values
sets, the values schema, the generated webhook TLS, the sidecar RBAC against
deploy/rbac/kccl-sidecar.yaml, the image names and Dockerfiles, and the freshness of the raw
manifests. Usage: test_chart.py [TEST...] (no argument: all); CTest runs one per entry.
"""
import base64
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chart_common as c  # noqa: E402
from chart_common import check, one, find  # noqa: E402

# name -> helm arguments. Each set renders, lints, and passes every render assertion.
VALUE_SETS = {
    "defaults": [],
    "replicas2": ["--set", "replicas=2"],
    "certmanager": ["--set", "certManager.enabled=true"],
    "certmanager-issuer": ["--set", "certManager.enabled=true",
                           "--set", "certManager.issuerRef.name=corp-ca",
                           "--set", "certManager.issuerRef.kind=ClusterIssuer"],
    "namespaces": ["--set-json", 'workloadNamespaces=["team-a","team-b","default"]'],
    "example": ["--set", "example.enabled=true"],
    "example-no-hold": ["--set", "example.enabled=true", "--set", "example.holdSeconds=0"],
    "watch-namespace": ["--set", "operator.watchNamespace=team-a",
                        "--set-json", 'workloadNamespaces=["team-a"]'],
    "no-workload-namespaces": ["--set-json", "workloadNamespaces=[]"],
    "kind": ["-f", os.path.join(c.ROOT, "e2e", "kind", "values.yaml")],
}

# operator/README.md, "RBAC (least privilege)": what the operator calls, and nothing more.
OPERATOR_RULES = c.normalize_rules([
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "patch"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": ["kccl.io"], "resources": ["commgroups"],
     "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": ["kccl.io"], "resources": ["commgroups/status"], "verbs": ["update"]},
    {"apiGroups": ["kccl.io"], "resources": ["commgroups/finalizers"], "verbs": ["update"]},
])
LEASE_RULES = c.normalize_rules([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                  "verbs": ["get", "create", "update"]}])
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                  "CustomResourceDefinition", "Namespace"}


def values_of(args):
    """The effective values of a set (helm's own merge, read back from `helm get`-like output)."""
    vals = c.yaml.safe_load(open(os.path.join(c.CHART, "values.yaml")))
    i = 0
    while i < len(args):
        flag, arg = args[i], args[i + 1]
        i += 2
        if flag == "-f":
            merge(vals, c.yaml.safe_load(open(arg)))
            continue
        key, raw = arg.split("=", 1)
        val = c.yaml.safe_load(raw)
        node = vals
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = val
    return vals


def merge(dst, src):
    for k, v in (src or {}).items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v


# ------------------------------------------------------------------------------------ lint
def test_lint():
    c.need_helm()
    for name, args in VALUE_SETS.items():
        rc, out, err = c.run([c.HELM, "lint", c.CHART, "--strict", "--namespace", c.NAMESPACE,
                              "--kube-version", c.KUBE_VERSION] + args)
        check(rc == 0, "helm lint --strict (%s) failed: %s%s" % (name, out, err))
        check("[ERROR]" not in out and "[WARNING]" not in out,
              "helm lint (%s) reports problems:\n%s" % (name, out))


# ---------------------------------------------------------------------------------- render
def assert_security(pod_spec, what):
    psc = pod_spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "%s: pod runAsNonRoot is not true" % what)
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          "%s: pod seccompProfile is not RuntimeDefault" % what)
    for ctr in pod_spec["containers"]:
        sc = ctr.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True,
              "%s/%s: root fs writable" % (what, ctr["name"]))
        check(sc.get("allowPrivilegeEscalation") is False,
              "%s/%s: allowPrivilegeEscalation not false" % (what, ctr["name"]))
        check(sc.get("capabilities", {}).get("drop") == ["ALL"],
              "%s/%s: capabilities.drop is not [ALL]" % (what, ctr["name"]))
        check(not sc.get("privileged"), "%s/%s: privileged" % (what, ctr["name"]))


def assert_deployment(docs, vals):
    dep = one(docs, "Deployment", "kccl-operator", c.NAMESPACE)
    check(dep["spec"]["replicas"] == vals["replicas"], "replicas %r" % dep["spec"]["replicas"])
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    assert_security(spec, "operator")
    check(spec["serviceAccountName"] == "kccl-operator", "operator ServiceAccount")
    sel = dep["spec"]["selector"]["matchLabels"]
    check(all(pod["metadata"]["labels"].get(k) == v for k, v in sel.items()),
          "the Deployment's selector does not match its pod labels")
    (ctr,) = spec["containers"]
    check(ctr["image"] == "ghcr.io/kccl/kccl-operator:" + c.APP_VERSION, "image " + ctr["image"])
    args = ctr["args"]
    for a in ("--health-addr=:8081", "--webhook-addr=:9443", "--webhook-cert-dir=/tls",
              "--sidecar-image=ghcr.io/kccl/kccl-sidecar:" + c.APP_VERSION):
        check(a in args, "operator args lack %s: %s" % (a, args))
    check(("--leader-elect" in args) == (vals["replicas"] > 1),
          "--leader-elect must be there exactly when replicas > 1 (replicas %d): %s" %
          (vals["replicas"], args))
    ns = vals["operator"]["watchNamespace"]
    has_ns = any(a.startswith("--namespace") for a in args)
    check(("--namespace=" + ns in args) if ns else not has_ns,
          "--namespace does not follow operator.watchNamespace: %s" % args)
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    check(ports == {"webhook": 9443, "health": 8081}, "container ports %s" % ports)
    check(ctr["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}, "liveness")
    check(ctr["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}, "readiness")
    check(ctr["resources"].get("limits") and ctr["resources"].get("requests"), "resources")
    mounts = {m["name"]: m for m in ctr["volumeMounts"]}
    check(mounts.get("webhook-tls", {}).get("mountPath") == "/tls" and
          mounts["webhook-tls"].get("readOnly") is True, "TLS not mounted read-only at /tls")
    pdbs = find(docs, "PodDisruptionBudget", "kccl-operator", c.NAMESPACE)
    check(len(pdbs) == (1 if vals["replicas"] > 1 else 0),
          "a PodDisruptionBudget must exist exactly when replicas > 1")
    for pdb in pdbs:
        check(pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"]["matchLabels"] == sel,
              "PodDisruptionBudget %s" % pdb["spec"])
    vol = [v for v in spec["volumes"] if v["name"] == "webhook-tls"][0]
    check(vol["secret"]["secretName"] == vals["webhook"]["secretName"], "TLS volume's Secret")
    return dep


def assert_rbac(docs, vals):
    for d in docs:
        for r in d.get("rules", []) if d["kind"] in ("Role", "ClusterRole") else []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                check("*" not in r.get(field, []), "%s %s: wildcard in %s" %
                      (d["kind"], d["metadata"]["name"], field))
            for v in ("delete", "deletecollection", "escalate", "bind", "impersonate"):
                check(v not in r["verbs"],
                      "%s %s grants %s" % (d["kind"], d["metadata"]["name"], v))
    ns = vals["operator"]["watchNamespace"]
    kind = "Role" if ns else "ClusterRole"
    role = one(docs, kind, "kccl-operator", ns or None)
    check(c.normalize_rules(role["rules"]) == OPERATOR_RULES,
          "operator %s rules differ from the least-privilege set: %s" % (kind, role["rules"]))
    other = "ClusterRole" if ns else "Role"
    check(not find(docs, other, "kccl-operator"), "both a Role and a ClusterRole kccl-operator")
    binding = one(docs, kind + "Binding", "kccl-operator")
    check(binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                                 "name": "kccl-operator"}, "operator binding roleRef")
    check(binding["subjects"] == [{"kind": "ServiceAccount", "name": "kccl-operator",
                                   "namespace": c.NAMESPACE}], "operator binding subjects")
    lease = one(docs, "Role", "kccl-operator-leader-election", c.NAMESPACE)
    check(c.normalize_rules(lease["rules"]) == LEASE_RULES, "lease Role rules %s" % lease["rules"])
    one(docs, "RoleBinding", "kccl-operator-leader-election", c.NAMESPACE)
    got = sorted(d["metadata"]["namespace"] for d in find(docs, "Role", "kccl-sidecar"))
    check(got == sorted(vals["workloadNamespaces"]),
          "sidecar Roles in %s, workloadNamespaces %s" % (got, vals["workloadNamespaces"]))
    for w in vals["workloadNamespaces"]:
        one(docs, "ServiceAccount", "kccl-sidecar", w)
        rb = one(docs, "RoleBinding", "kccl-sidecar", w)
        want = [{"kind": "ServiceAccount", "name": "kccl-sidecar", "namespace": w}]
        check(rb["subjects"] == want,
              "sidecar RoleBinding subjects in %s" % w)


def assert_webhook(docs, vals, dep):
    svc = one(docs, "Service", "kccl-webhook", c.NAMESPACE)
    (port,) = svc["spec"]["ports"]
    check(port["port"] == 443 and port["targetPort"] == "webhook", "Service port %s" % port)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    check(all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
          "the webhook Service's selector does not select the operator pods")
    mwc = one(docs, "MutatingWebhookConfiguration", "kccl-sidecar-injector")
    (wh,) = mwc["webhooks"]
    expect = {"name": "inject.kccl.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
              "failurePolicy": "Fail", "reinvocationPolicy": "IfNeeded", "timeoutSeconds": 10}
    for k, v in expect.items():
        check(wh.get(k) == v, "webhook %s = %r, want %r" % (k, wh.get(k), v))
    svc_ref = wh["clientConfig"]["service"]
    check(svc_ref == {"name": "kccl-webhook", "namespace": c.NAMESPACE, "path": "/mutate",
                      "port": 443}, "clientConfig.service %s" % svc_ref)
    check(wh["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"], "scope": "Namespaced"}], "rules %s" % wh["rules"])
    check(wh["namespaceSelector"] == {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
         "values": ["kube-system", c.NAMESPACE]}]},
          "namespaceSelector %s" % wh["namespaceSelector"])
    check(wh["matchConditions"] == [{"name": "has-kccl-group", "expression":
          "has(object.metadata.annotations) && 'kccl.io/group' in object.metadata.annotations"}],
          "matchConditions %s" % wh["matchConditions"])
    ann = mwc["metadata"].get("annotations", {})
    if vals["certManager"]["enabled"]:
        check(ann.get("cert-manager.io/inject-ca-from") == c.NAMESPACE + "/kccl-webhook",
              "cert-manager CA injection annotation missing")
        check("caBundle" not in wh["clientConfig"], "caBundle set although cert-manager injects it")
        check(not find(docs, "Secret"), "a Secret rendered although cert-manager issues it")
        cert = one(docs, "Certificate", "kccl-webhook", c.NAMESPACE)
        check(cert["spec"]["secretName"] == vals["webhook"]["secretName"], "Certificate secretName")
        check("kccl-webhook.%s.svc" % c.NAMESPACE in cert["spec"]["dnsNames"], "dnsNames")
        own_issuer = not vals["certManager"]["issuerRef"]["name"]
        check(bool(find(docs, "Issuer")) == own_issuer, "Issuers rendered iff no issuerRef.name")
        if not own_issuer:
            check(cert["spec"]["issuerRef"]["name"] == vals["certManager"]["issuerRef"]["name"] and
                  cert["spec"]["issuerRef"]["kind"] == vals["certManager"]["issuerRef"]["kind"],
                  "Certificate issuerRef %s" % cert["spec"]["issuerRef"])
    else:
        check(not ann.get("cert-manager.io/inject-ca-from"), "cert-manager annotation without it")
        sec = one(docs, "Secret", vals["webhook"]["secretName"], c.NAMESPACE)
        check(wh["clientConfig"].get("caBundle") == sec["data"]["ca.crt"],
              "caBundle is not the Secret's ca.crt")
        check(not find(docs, "Certificate") and not find(docs, "Issuer"), "cert-manager objects")


def assert_example(docs, vals):
    e = vals["example"]
    jobs, groups = find(docs, "Job"), find(docs, "CommGroup")
    if not e["enabled"]:
        check(not jobs and not groups, "example objects rendered although example.enabled=false")
        return
    job = one(docs, "Job", e["name"], e["namespace"])
    s = job["spec"]
    check(s["completionMode"] == "Indexed" and s["completions"] == 8 and s["parallelism"] == 8,
          "example Job is not an Indexed Job of 8: %s" % s)
    tpl = s["template"]
    ann = tpl["metadata"]["annotations"]
    check(ann.get("kccl.io/group") == e["name"] and ann.get("kccl.io/world-size") == "8",
          "example pod annotations %s" % ann)
    (ctr,) = tpl["spec"]["containers"]
    check(ctr["image"] == "ghcr.io/kccl/kccl-runtime-cpu:" + c.APP_VERSION and
          ctr["command"] == ["kccl-demo"],
          "example container %s %s" % (ctr["image"], ctr["command"]))
    hold = e.get("holdSeconds", 0)
    check(ctr.get("args") == (["--hold", str(hold)] if hold else None),
          "example args %s, holdSeconds %s" % (ctr.get("args"), hold))
    assert_security(tpl["spec"], "example")
    g = one(docs, "CommGroup", e["name"], e["namespace"])
    check(g["apiVersion"] == "kccl.io/v1alpha1" and g["spec"]["worldSize"] == 8 and
          g["spec"]["port"] == 29500 and g["spec"]["failurePolicy"] in ("Restart", "Fail"),
          "example CommGroup %s" % g)


def test_render():
    c.need_helm()
    for name, args in VALUE_SETS.items():
        try:
            docs = c.render(args)
            vals = values_of(args)
            for d in docs:
                if d["kind"] not in CLUSTER_SCOPED:
                    check(d["metadata"].get("namespace"), "%s %s has no namespace" %
                          (d["kind"], d["metadata"]["name"]))
            dep = assert_deployment(docs, vals)
            assert_rbac(docs, vals)
            assert_webhook(docs, vals, dep)
            assert_example(docs, vals)
        except c.Failure as e:
            raise c.Failure("values set %r: %s" % (name, e))


# ---------------------------------------------------------------------------------- schema
BAD_VALUES = [
    (["--set", "replicas=-1"], ["/replicas", "minimum", "want 1"]),
    (["--set", "replicas=0"], ["/replicas", "minimum"]),
    (["--set", "replicas=two"], ["/replicas"]),
    (["--set", "replica=2"], ["additional properties", "replica"]),
    (["--set", "image.operator.pullPolicy=Sometimes"], ["/image/operator/pullPolicy"]),
    (["--set", "image.operator.registry=x"], ["additional properties", "registry"]),
    (["--set-json", 'workloadNamespaces=["Team_A"]'], ["/workloadNamespaces/0"]),
    (["--set-json", 'workloadNamespaces=["a","a"]'], ["/workloadNamespaces"]),
    (["--set", "operator.logLevel=loud"], ["/operator/logLevel"]),
    (["--set", "certManager.issuerRef.kind=Vault"], ["/certManager/issuerRef/kind"]),
    (["--set", "certManager.duration=1year"], ["/certManager/duration"]),
    (["--set", "example.worldSize=0"], ["/example/worldSize"]),
    (["--set", "example.holdSeconds=-1"], ["/example/holdSeconds"]),
    (["--set", "webhook.certValidityDays=0"], ["/webhook/certValidityDays"]),
    # cross-key checks in templates/_helpers.tpl
    (["--set", "example.enabled=true", "--set", "example.namespace=ml"],
     ['example.namespace "ml" is not in workloadNamespaces', "add it to workloadNamespaces"]),
    (["--set-json", 'workloadNamespaces=["kccl-system"]'],
     ['contains the release namespace "kccl-system"', "install the chart into its own namespace"]),
    (["--set", "example.enabled=true", "--set", "operator.watchNamespace=ml",
      "--set-json", 'workloadNamespaces=["ml","default"]'],
     ['operator.watchNamespace "ml" does not include example.namespace "default"']),
]


def test_schema():
    c.need_helm()
    for args, needles in BAD_VALUES:
        rc, out, err = c.helm_template(args)
        check(rc != 0, "helm template %s succeeded; the values must be rejected" % args)
        for n in needles:
            check(n in err, "helm template %s: error lacks %r:\n%s" % (args, n, err.strip()))
        check(not out.strip(), "helm template %s printed manifests on failure" % args)
    # Chart.yaml's kubeVersion: older clusters are refused
    rc, _, err = c.run([c.HELM, "template", "kccl", c.CHART, "-n", c.NAMESPACE,
                        "--kube-version", "1.28.9"])
    check(rc != 0 and "kubeVersion" in err, "Kubernetes 1.28 was not refused: %s" % err.strip())
    # and the schema stays strict at each level
    schema = c.yaml.safe_load(open(os.path.join(c.CHART, "values.schema.json")))
    check(schema.get("additionalProperties") is False, "schema: top level is not strict")
    for k in ("image", "operator", "webhook", "certManager", "example"):
        check(schema["properties"][k].get("additionalProperties") is False,
              "schema: %s is not strict" % k)


# ------------------------------------------------------------------------------------- tls
def openssl(args, data=None):
    try:
        p = subprocess.run(["openssl"] + args, input=data, capture_output=True, timeout=30)
    except FileNotFoundError:
        c.skip("no openssl")
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def tls_of(docs):
    sec = one(docs, "Secret", "kccl-webhook-tls", c.NAMESPACE)
    check(sec["type"] == "kubernetes.io/tls", "TLS Secret type %s" % sec["type"])
    return {k: base64.b64decode(sec["data"][k]) for k in ("tls.crt", "tls.key", "ca.crt")}


def test_tls():
    c.need_helm()
    docs = c.render([])
    t = tls_of(docs)
    with tempfile.TemporaryDirectory() as d:
        for k, v in t.items():
            open(os.path.join(d, k), "wb").write(v)
        crt, key, ca = (os.path.join(d, k) for k in ("tls.crt", "tls.key", "ca.crt"))
        rc, out, err = openssl(["verify", "-purpose", "sslserver", "-CAfile", ca, crt])
        check(rc == 0, "serving certificate does not verify against ca.crt: %s%s" % (out, err))
        rc, out, _ = openssl(["x509", "-in", crt, "-noout", "-ext", "subjectAltName"])
        for n in ("kccl-webhook.kccl-system.svc", "kccl-webhook.kccl-system.svc.cluster.local"):
            check("DNS:" + n in out, "certificate SANs lack %s: %s" % (n, out))
        _, pub_crt, _ = openssl(["x509", "-in", crt, "-noout", "-pubkey"])
        _, pub_key, _ = openssl(["pkey", "-in", key, "-pubout"])
        check(pub_crt and pub_crt == pub_key, "tls.key is not the certificate's key")
        rc, _, _ = openssl(["x509", "-in", crt, "-noout", "-checkend", str(3000 * 86400)])
        check(rc == 0, "certificate expires within 3000 days (certValidityDays default 3650)")
        rc, _, _ = openssl(["x509", "-in", ca, "-noout", "-checkend", str(3000 * 86400)])
        check(rc == 0, "CA expires within 3000 days")
    # Without a cluster (no lookup), every render makes a new CA: reuse is the lookup's job
    # (test_chart_dryrun.py checks it against the apiserver).
    t2 = tls_of(c.render([]))
    check(t2["ca.crt"] != t["ca.crt"], "two renders without a cluster gave the same CA")
    # The certificate follows the release namespace.
    other = c.render([], namespace="ml-infra")
    sec = one(other, "Secret", "kccl-webhook-tls", "ml-infra")
    rc, out, _ = openssl(["x509", "-noout", "-ext", "subjectAltName"],
                         base64.b64decode(sec["data"]["tls.crt"]))
    check("DNS:kccl-webhook.ml-infra.svc" in out, "SANs do not follow the namespace: %s" % out)
    # and a shorter validity is honoured
    short = tls_of(c.render(["--set", "webhook.certValidityDays=2"]))
    rc, _, _ = openssl(["x509", "-noout", "-checkend", str(3 * 86400)], short["tls.crt"])
    check(rc != 0, "certValidityDays=2 gave a certificate valid for more than 3 days")


# ---------------------------------------------------------------------------- sidecar RBAC
def test_sidecar_rbac():
    """The chart's sidecar objects are deploy/rbac/kccl-sidecar.yaml's, in every namespace."""
    c.need_helm()
    ref = [d for d in c.yaml.safe_load_all(open(os.path.join(c.ROOT, "deploy", "rbac",
                                                             "kccl-sidecar.yaml"))) if d]
    ref_role = [d for d in ref if d["kind"] == "Role"][0]
    ref_rb = [d for d in ref if d["kind"] == "RoleBinding"][0]
    ref_sa = [d for d in ref if d["kind"] == "ServiceAccount"][0]
    docs = c.render(VALUE_SETS["namespaces"])
    for ns in ("team-a", "team-b", "default"):
        role = one(docs, "Role", ref_role["metadata"]["name"], ns)
        check(c.normalize_rules(role["rules"]) == c.normalize_rules(ref_role["rules"]),
              "sidecar Role rules in %s differ from deploy/rbac/kccl-sidecar.yaml:\n chart: %s\n"
              " file:  %s" % (ns, role["rules"], ref_role["rules"]))
        rb = one(docs, "RoleBinding", ref_rb["metadata"]["name"], ns)
        check(rb["roleRef"] == ref_rb["roleRef"], "sidecar RoleBinding roleRef in %s" % ns)
        check([(s["kind"], s["name"]) for s in rb["subjects"]] ==
              [(s["kind"], s["name"]) for s in ref_rb["subjects"]], "RoleBinding subjects in " + ns)
        one(docs, "ServiceAccount", ref_sa["metadata"]["name"], ns)


# ---------------------------------------------------------------------------------- images
IMAGES = {"kccl-operator": "operator", "kccl-sidecar": "sidecar", "kccl-runtime": "runtime",
          "kccl-runtime-cpu": "runtime-cpu"}


def test_images():
    """Image names agree across the chart, the Dockerfiles and the kind scenario; every
    Dockerfile is multi-stage and its final stage runs as 65532."""
    chart = c.yaml.safe_load(open(os.path.join(c.CHART, "Chart.yaml")))
    check(chart["version"] == c.APP_VERSION and chart["appVersion"] == c.APP_VERSION,
          "Chart.yaml version/appVersion")
    cmake = open(os.path.join(c.ROOT, "CMakeLists.txt")).read()
    check("project(kccl VERSION %s" % c.APP_VERSION in cmake, "chart appVersion != project version")
    vals = c.yaml.safe_load(open(os.path.join(c.CHART, "values.yaml")))
    check(vals["image"]["operator"]["repository"] == "ghcr.io/kccl/kccl-operator", "operator repo")
    check(vals["image"]["sidecar"]["repository"] == "ghcr.io/kccl/kccl-sidecar", "sidecar repo")
    check(vals["example"]["image"] == "ghcr.io/kccl/kccl-runtime-cpu:" + c.APP_VERSION, "example")
    kind_run = open(os.path.join(c.ROOT, "e2e", "kind", "run.sh")).read()
    for image, stem in IMAGES.items():
        path = os.path.join(c.ROOT, "deploy", "docker", stem + ".Dockerfile")
        check(os.path.isfile(path), "missing " + path)
        lines = [ln.strip() for ln in open(path) if ln.strip() and not ln.startswith("#")]
        froms = [i for i, ln in enumerate(lines) if ln.upper().startswith("FROM ")]
        check(len(froms) >= 2, "%s is not multi-stage" % path)
        final = lines[froms[-1]:]
        users = [ln for ln in final if ln.upper().startswith("USER ")]
        check(users and users[-1].split()[1].split(":")[0] == "65532",
              "%s: the final stage does not run as USER 65532" % path)
        check(stem + ".Dockerfile" in kind_run and image in kind_run,
              "e2e/kind/run.sh does not build %s from %s.Dockerfile" % (image, stem))


# ------------------------------------------------------------------------------- manifests
def test_manifests():
    c.need_helm()
    env = dict(os.environ, HELM=c.HELM)
    rc, out, err = c.run([os.path.join(c.ROOT, "deploy", "render-manifests.sh"), "--check"],
                         env=env)
    if rc == c.SKIP:
        c.skip(err.strip())
    check(rc == 0, "raw manifests are stale: %s%s" % (out, err))


TESTS = {"lint": test_lint, "render": test_render, "schema": test_schema, "tls": test_tls,
         "sidecar_rbac": test_sidecar_rbac, "images": test_images, "manifests": test_manifests}

if __name__ == "__main__":
    sys.exit(c.main(TESTS, sys.argv))
