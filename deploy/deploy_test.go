package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/redact"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// The tests run in deploy/; the repository root is one up.
const root = ".."

func TestMain(m *testing.M) {
	code := m.Run()
	testbed.Cleanup()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ---------- helpers ----------

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binaries builds the real collector, analyzer and healthcheck commands once
// per test binary, so the shipped configs are checked by the code that will
// read them in production.
func binaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "mcpwatch-deploy-bin-")
		if binErr != nil {
			return
		}
		for name, pkg := range map[string]string{"collector": "./cmd/collector", "analyzer": "./cmd/analyzer", "healthcheck": "./deploy/healthcheck"} {
			// The default build (shared build cache); the images' static
			// CGO_ENABLED=0 -trimpath build compiles the same code.
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("cannot build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// cleanEnv is the test's environment without mcpwatch/ClickHouse variables,
// plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MCPWATCH_") || strings.HasPrefix(kv, "CLICKHOUSE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func runBin(t *testing.T, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), bin), args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// docs decodes every YAML document of a file.
func docs(t *testing.T, rel string) []map[string]any {
	t.Helper()
	out, err := decodeAll(readFile(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return out
}

func decodeAll(b []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []map[string]any
	for i := 0; ; i++ {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
}

// get walks a decoded YAML tree: get(m, "spec", "template", "spec").
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

func list(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

func intOf(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return 0
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q is not host:port: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: bad port", hostport)
	}
	return n
}

func sortedKeys[V any](m map[int]V) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// deployFiles lists files under deploy/ with one of the extensions.
func deployFiles(t *testing.T, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for _, e := range exts {
			if strings.HasSuffix(p, e) {
				rel, _ := filepath.Rel(root, p)
				out = append(out, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fileValues collects every non-empty string under a key ending in "_file"
// (token_file, password_file, ca_file, cert_file, ...).
func fileValues(v any, prefix string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && strings.HasSuffix(k, "_file") && s != "" {
				out[prefix+k] = s
			}
			fileValues(c, prefix+k+".", out)
		}
	case []any:
		for i, c := range x {
			fileValues(c, fmt.Sprintf("%s%d.", prefix, i), out)
		}
	}
}

// ---------- the configs through the real loaders ----------

var (
	collectorConfigs = []string{"deploy/compose/config/collector.yaml", "deploy/kubernetes/config/collector.yaml"}
	analyzerConfigs  = []string{"deploy/compose/config/analyzer.yaml", "deploy/kubernetes/config/analyzer.yaml"}
)

func TestCollectorConfigsLoadInRealCollector(t *testing.T) {
	for _, rel := range collectorConfigs {
		t.Run(path.Base(path.Dir(path.Dir(rel))), func(t *testing.T) {
			out, err := runBin(t, cleanEnv(), "collector", "--config", filepath.Join(root, rel), "--check-config")
			if err != nil || !strings.Contains(out, "config ok") {
				t.Fatalf("collector --check-config %s: %v\n%s", rel, err, out)
			}
		})
	}
	// The check is strict: an unknown key in a copy of the file fails.
	bad := filepath.Join(t.TempDir(), "collector.yaml")
	b := append(readFile(t, collectorConfigs[0]), []byte("\nno_such_key: 1\n")...)
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runBin(t, cleanEnv(), "collector", "--config", bad, "--check-config")
	if err == nil || !strings.Contains(out, "no_such_key") {
		t.Fatalf("collector accepted an unknown key: %v\n%s", err, out)
	}
}

// The analyzer has no validate-only flag (asked for in the report); `analyzer
// migrate` loads and validates the config before it connects, so:
//   - the compose config migrates a real ClickHouse (addresses overridden by
//     the analyzer's documented env variables, the password variable named
//     by clickhouse.password_env set to the test server's empty password);
//   - the Kubernetes config (TLS, files from Secrets) must get past
//     validation and fail only when it opens the store.
func TestAnalyzerComposeConfigMigratesRealClickHouse(t *testing.T) {
	rel := analyzerConfigs[0]
	ch := testbed.ClickHouse(t)
	var cfg map[string]any
	if err := yaml.Unmarshal(readFile(t, rel), &cfg); err != nil {
		t.Fatal(err)
	}
	pwEnv := str(cfg, "clickhouse", "password_env")
	if pwEnv == "" {
		t.Fatalf("%s: clickhouse.password_env is not set", rel)
	}
	env := cleanEnv("MCPWATCH_CLICKHOUSE_ADDR="+ch.Addr, "MCPWATCH_CLICKHOUSE_DATABASE="+ch.Database,
		"MCPWATCH_CLICKHOUSE_USERNAME="+ch.Username, pwEnv+"=")
	out, err := runBin(t, env, "analyzer", "migrate", "--config", filepath.Join(root, rel))
	if err != nil {
		t.Fatalf("analyzer migrate with %s: %v\n%s", rel, err, out)
	}
	conn := ch.Conn(t)
	var n uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.tables WHERE database = ? AND name = 'events'", ch.Database).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("analyzer migrate with %s did not create %s.events:\n%s", rel, ch.Database, out)
	}
}

func TestAnalyzerKubernetesConfigPassesValidation(t *testing.T) {
	rel := analyzerConfigs[1]
	closed := closedAddr(t)
	out, err := runBin(t, cleanEnv(), "analyzer", "migrate", "--config", filepath.Join(root, rel), "--clickhouse-addr", closed)
	if err == nil {
		t.Fatalf("analyzer migrate against %s succeeded?\n%s", closed, out)
	}
	for _, s := range []string{"invalid config", "cannot parse config", "cannot read config", "unexpected arguments"} {
		if strings.Contains(out, s) {
			t.Fatalf("%s is rejected by the analyzer's config loader:\n%s", rel, out)
		}
	}
	if !strings.Contains(out, "analyzer migrate:") {
		t.Fatalf("unexpected analyzer output:\n%s", out)
	}
	// Negative control: the same path reports a broken copy as a config error.
	bad := filepath.Join(t.TempDir(), "analyzer.yaml")
	b := bytes.Replace(readFile(t, rel), []byte("batch_rows: 50000"), []byte("batch_rows: 0\n  no_such_key: 1"), 1)
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runBin(t, cleanEnv(), "analyzer", "migrate", "--config", bad, "--clickhouse-addr", closed)
	if err == nil || !strings.Contains(out, "cannot parse config") || !strings.Contains(out, "no_such_key") {
		t.Fatalf("analyzer accepted a broken config: %v\n%s", err, out)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func TestHealthcheckBinary(t *testing.T) {
	status := http.StatusOK
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if out, err := runBin(t, cleanEnv(), "healthcheck", srv.URL+"/readyz"); err != nil {
		t.Fatalf("healthy endpoint: %v\n%s", err, out)
	}
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	if out, err := runBin(t, cleanEnv(), "healthcheck", srv.URL+"/readyz"); err == nil || !strings.Contains(out, "503") {
		t.Fatalf("unhealthy endpoint passed: %v\n%s", err, out)
	}
	if _, err := runBin(t, cleanEnv(), "healthcheck", "http://"+closedAddr(t)+"/readyz"); err == nil {
		t.Fatal("closed port passed")
	}
}

// ---------- every YAML parses; images pinned ----------

func TestEveryYAMLParses(t *testing.T) {
	files := deployFiles(t, ".yaml", ".yml")
	if len(files) < 10 {
		t.Fatalf("found only %d YAML files under deploy/: %v", len(files), files)
	}
	for _, f := range files {
		if _, err := decodeAll(readFile(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func checkPinned(ref string) error {
	if ref == "" {
		return errors.New("empty image")
	}
	if strings.Contains(ref, "@sha256:") {
		return nil
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(last, ":")
	if i < 0 {
		return fmt.Errorf("image %q has no tag", ref)
	}
	tag := last[i+1:]
	if tag == "" || tag == "latest" || strings.Contains(tag, "$") {
		return fmt.Errorf("image %q is not pinned to a version tag", ref)
	}
	if !regexp.MustCompile(`[0-9]`).MatchString(tag) {
		return fmt.Errorf("image %q: tag %q is not a version", ref, tag)
	}
	return nil
}

func TestCheckPinned(t *testing.T) {
	for ref, ok := range map[string]bool{"golang:1.26": true, "gcr.io/distroless/static-debian12:nonroot": false,
		"clickhouse/clickhouse-server:25.8": true, "grafana/grafana": false, "x:latest": false,
		"localhost:5000/x": false, "localhost:5000/x:1.2": true, "x@sha256:abc": true} {
		if got := checkPinned(ref) == nil; got != ok {
			t.Errorf("checkPinned(%q) ok = %v, want %v", ref, got, ok)
		}
	}
}

// dockerfile is the parsed subset of a Dockerfile the checks need.
type dockerfile struct {
	from       []string // images (stage references removed)
	stages     []string
	copies     [][]string // COPY args without --from
	expose     map[int]bool
	finalUser  string
	env        []string
	buildPkgs  []string
	entrypoint string
}

func parseDockerfile(t *testing.T, rel string) dockerfile {
	t.Helper()
	d := dockerfile{expose: map[int]bool{}}
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, rel)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	stageNames := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			img := f[1]
			if !stageNames[img] && img != "scratch" {
				d.from = append(d.from, img)
			}
			if len(f) >= 4 && strings.EqualFold(f[2], "AS") {
				stageNames[f[3]] = true
			}
			d.stages = append(d.stages, img)
			d.finalUser = ""
		case "COPY":
			var args []string
			fromStage := false
			for _, a := range f[1:] {
				if strings.HasPrefix(a, "--from=") {
					fromStage = true
				}
				if !strings.HasPrefix(a, "--") {
					args = append(args, a)
				}
			}
			if !fromStage {
				d.copies = append(d.copies, args)
			}
		case "EXPOSE":
			for _, p := range f[1:] {
				n, _ := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				d.expose[n] = true
			}
		case "USER":
			d.finalUser = f[1]
		case "ENV", "ARG":
			d.env = append(d.env, strings.Join(f[1:], " "))
		case "ENTRYPOINT":
			d.entrypoint = strings.Join(f[1:], " ")
		case "RUN":
			for _, m := range regexp.MustCompile(`go build [^&]*?(\./\S+)`).FindAllStringSubmatch(l, -1) {
				d.buildPkgs = append(d.buildPkgs, m[1])
			}
		}
	}
	return d
}

func TestDockerfiles(t *testing.T) {
	files := deployFiles(t, "/Dockerfile.collector", "/Dockerfile.analyzer", "/Dockerfile.grafana")
	if len(files) != 3 {
		t.Fatalf("Dockerfiles: %v", files)
	}
	secretish := regexp.MustCompile(`(?i)(password|token|secret|api_?key)\S*[ =]\S+`)
	for _, rel := range files {
		d := parseDockerfile(t, rel)
		for _, img := range d.from {
			if err := checkPinned(img); err != nil && !strings.HasPrefix(img, "gcr.io/distroless/") {
				t.Errorf("%s: %v", rel, err)
			}
		}
		if d.finalUser == "" || d.finalUser == "root" || d.finalUser == "0" || strings.HasPrefix(d.finalUser, "0:") {
			t.Errorf("%s: final stage runs as %q; want a non-root USER", rel, d.finalUser)
		}
		for _, e := range d.env {
			if secretish.MatchString(e) {
				t.Errorf("%s: ENV/ARG looks like a baked-in secret: %s", rel, e)
			}
		}
		for _, c := range d.copies {
			for _, src := range c[:len(c)-1] {
				if src == "." {
					continue
				}
				if m, _ := filepath.Glob(filepath.Join(root, src)); len(m) == 0 {
					t.Errorf("%s: COPY source %s does not exist in the repository", rel, src)
				}
			}
		}
		for _, p := range d.buildPkgs {
			dir := filepath.Join(root, p)
			if strings.Contains(rel, "grafana") {
				dir = filepath.Join(root, "grafana-plugin", p)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(m) == 0 {
				t.Errorf("%s: go build %s: no Go files in %s", rel, p, dir)
			}
		}
		if !strings.Contains(string(readFile(t, rel)), `CGO_ENABLED=0 `) || !strings.Contains(string(readFile(t, rel)), `-trimpath -ldflags "-s -w"`) {
			t.Errorf("%s: Go builds must be static, trimmed and stripped", rel)
		}
		if _, err := os.Stat(filepath.Join(root, rel+".dockerignore")); err != nil {
			t.Errorf("%s: no %s.dockerignore (the context is the whole repository)", rel, path.Base(rel))
		}
	}
	// Distroless runtime for the Go services.
	for _, name := range []string{"collector", "analyzer"} {
		d := parseDockerfile(t, "deploy/docker/Dockerfile."+name)
		last := d.stages[len(d.stages)-1]
		if !strings.HasPrefix(last, "gcr.io/distroless/static") || !strings.HasSuffix(last, ":nonroot") {
			t.Errorf("Dockerfile.%s: runtime %s, want distroless/static nonroot", name, last)
		}
	}
	// EXPOSE matches the listen ports of the configs.
	col := parseDockerfile(t, "deploy/docker/Dockerfile.collector")
	for _, rel := range collectorConfigs {
		if got, want := sortedKeys(col.expose), sortedKeys(collectorPorts(t, rel)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Dockerfile.collector EXPOSE %v, %s listens on %v", got, rel, want)
		}
	}
	an := parseDockerfile(t, "deploy/docker/Dockerfile.analyzer")
	for _, rel := range analyzerConfigs {
		if p := analyzerPort(t, rel); len(an.expose) != 1 || !an.expose[p] {
			t.Errorf("Dockerfile.analyzer EXPOSE %v, %s listens on %d", sortedKeys(an.expose), rel, p)
		}
	}
	// Grafana: the plugin ids are allowed unsigned.
	g := string(readFile(t, "deploy/docker/Dockerfile.grafana"))
	for _, id := range pluginIDs(t) {
		if !strings.Contains(g, "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=") || !regexp.MustCompile(`ALLOW_LOADING_UNSIGNED_PLUGINS=\S*\b`+regexp.QuoteMeta(id)+`\b`).MatchString(g) {
			t.Errorf("Dockerfile.grafana does not allow unsigned plugin %s", id)
		}
		if !strings.Contains(g, "/var/lib/grafana/plugins/"+pluginIDs(t)[0]+"/") {
			t.Errorf("Dockerfile.grafana does not install the plugin under its id")
		}
	}
}

// collectorPorts: port → name of every listener in a collector config.
func collectorPorts(t *testing.T, rel string) map[int]string {
	var cfg map[string]any
	if err := yaml.Unmarshal(readFile(t, rel), &cfg); err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for name, keys := range map[string][]string{"otlp-grpc": {"receiver", "grpc", "endpoint"},
		"otlp-http": {"receiver", "http", "endpoint"}, "admin": {"admin", "endpoint"}} {
		ep := str(cfg, keys...)
		if ep == "" || ep == "-" {
			t.Fatalf("%s: %s not set explicitly", rel, strings.Join(keys, "."))
		}
		out[portOf(t, ep)] = name
	}
	return out
}

func analyzerPort(t *testing.T, rel string) int {
	var cfg map[string]any
	if err := yaml.Unmarshal(readFile(t, rel), &cfg); err != nil {
		t.Fatal(err)
	}
	a := str(cfg, "analyzer", "admin_addr")
	if a == "" || strings.HasPrefix(a, "127.") || strings.HasPrefix(a, "localhost") {
		t.Fatalf("%s: analyzer.admin_addr %q must listen on all interfaces in a container", rel, a)
	}
	return portOf(t, a)
}

var idRE = regexp.MustCompile(`"id":\s*"([^"]+)"`)

// pluginIDs: the app id, then the nested data source id.
func pluginIDs(t *testing.T) []string {
	var ids []string
	for _, f := range []string{"grafana-plugin/src/plugin.json", "grafana-plugin/src/datasource/plugin.json"} {
		m := idRE.FindSubmatch(readFile(t, f))
		if m == nil {
			t.Fatalf("%s: no id", f)
		}
		ids = append(ids, string(m[1]))
	}
	return ids
}

// ---------- compose ----------

func TestCompose(t *testing.T) {
	const dir = "deploy/compose"
	c := docs(t, dir+"/compose.yaml")[0]
	services, _ := get(c, "services").(map[string]any)
	for _, want := range []string{"kafka", "clickhouse", "collector", "analyzer", "grafana", "alertmanager"} {
		if services[want] == nil {
			t.Errorf("compose: no service %s", want)
		}
	}
	volumes, _ := get(c, "volumes").(map[string]any)
	secrets, _ := get(c, "secrets").(map[string]any)
	for name, s := range services {
		if err := checkPinned(str(s, "image")); err != nil {
			t.Errorf("compose %s: %v", name, err)
		}
		if get(s, "healthcheck", "test") == nil {
			t.Errorf("compose %s: no healthcheck", name)
		}
		if deps, ok := get(s, "depends_on").(map[string]any); ok {
			for dep, cond := range deps {
				if services[dep] == nil {
					t.Errorf("compose %s: depends_on unknown service %s", name, dep)
				}
				if str(cond, "condition") == "service_healthy" && get(services[dep], "healthcheck") == nil {
					t.Errorf("compose %s: waits for %s to be healthy but it has no healthcheck", name, dep)
				}
			}
		} else if get(s, "depends_on") != nil {
			t.Errorf("compose %s: depends_on must use conditions", name)
		}
		for _, v := range list(s, "volumes") {
			spec, _ := v.(string)
			src := strings.Split(spec, ":")[0]
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(root, dir, src)); err != nil {
					t.Errorf("compose %s: mounted %s does not exist", name, src)
				}
			} else if volumes == nil || !hasKey(volumes, src) {
				t.Errorf("compose %s: volume %s is not a declared named volume", name, src)
			}
		}
		for _, sec := range list(s, "secrets") {
			if !hasKey(secrets, sec.(string)) {
				t.Errorf("compose %s: secret %s not declared", name, sec)
			}
		}
		for _, ef := range list(s, "env_file") {
			if _, err := os.Stat(filepath.Join(root, dir, ef.(string)+".example")); err != nil {
				t.Errorf("compose %s: env_file %s has no committed .example", name, ef)
			}
		}
		envMap, _ := get(s, "environment").(map[string]any)
		for k, v := range envMap {
			ks := strings.ToUpper(k)
			if (strings.Contains(ks, "PASSWORD") || strings.Contains(ks, "TOKEN") || strings.Contains(ks, "SECRET")) && !strings.HasSuffix(ks, "__FILE") {
				t.Errorf("compose %s: secret %s=%v inline; use env_file or docker secrets", name, k, v)
			}
		}
	}
	for name, s := range secrets {
		f := str(s, "file")
		if _, err := os.Stat(filepath.Join(root, dir, f+".example")); err != nil {
			t.Errorf("compose secret %s: %s has no committed .example", name, f)
		}
	}

	// Configs are mounted where --config points, and are the files checked
	// by the real loaders above.
	for name, cfg := range map[string]string{"collector": "collector.yaml", "analyzer": "analyzer.yaml"} {
		s := services[name]
		cmd := fmt.Sprint(get(s, "command"))
		var target string
		for _, v := range list(s, "volumes") {
			parts := strings.Split(v.(string), ":")
			if parts[0] == "./config/"+cfg {
				target = parts[1]
			}
		}
		if target == "" || !strings.Contains(cmd, target) {
			t.Errorf("compose %s: ./config/%s mounted at %q, command %s", name, cfg, target, cmd)
		}
	}

	// Ports: published container ports and health checks match the configs.
	colPorts := collectorPorts(t, dir+"/config/collector.yaml")
	published := map[int]bool{}
	for _, p := range list(services["collector"], "ports") {
		parts := strings.Split(p.(string), ":")
		n, _ := strconv.Atoi(parts[len(parts)-1])
		if colPorts[n] == "" {
			t.Errorf("compose collector publishes %s, not a collector listener %v", p, colPorts)
		}
		published[n] = true
	}
	for port, name := range colPorts {
		if strings.HasPrefix(name, "otlp") && !published[port] {
			t.Errorf("compose collector does not publish %s port %d", name, port)
		}
	}
	checkHealthPort(t, services["collector"], "collector", colPortByName(colPorts, "admin"))
	checkHealthPort(t, services["analyzer"], "analyzer", analyzerPort(t, dir+"/config/analyzer.yaml"))

	// Secrets referenced by the configs are provided to the services.
	for name, cfg := range map[string]string{"collector": "collector.yaml", "analyzer": "analyzer.yaml"} {
		var m map[string]any
		if err := yaml.Unmarshal(readFile(t, dir+"/config/"+cfg), &m); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		fileValues(m, "", files)
		for key, f := range files {
			sec, ok := strings.CutPrefix(f, "/run/secrets/")
			if !ok || !containsStr(list(services[name], "secrets"), sec) {
				t.Errorf("compose %s: %s = %s is not a docker secret of the service", name, key, f)
			}
		}
		if pw := str(m, "clickhouse", "password_env"); pw != "" && !envFileDefines(t, dir, services[name], pw) {
			t.Errorf("compose %s: clickhouse.password_env %s is not defined by its env_file", name, pw)
		}
	}
	// The compose ClickHouse user/database are the ones the analyzer uses.
	var an map[string]any
	if err := yaml.Unmarshal(readFile(t, dir+"/config/analyzer.yaml"), &an); err != nil {
		t.Fatal(err)
	}
	chEnv, _ := get(services["clickhouse"], "environment").(map[string]any)
	if chEnv["CLICKHOUSE_USER"] != str(an, "clickhouse", "username") || chEnv["CLICKHOUSE_DB"] != str(an, "clickhouse", "database") {
		t.Errorf("compose clickhouse user/db %v/%v, analyzer uses %s/%s", chEnv["CLICKHOUSE_USER"], chEnv["CLICKHOUSE_DB"],
			str(an, "clickhouse", "username"), str(an, "clickhouse", "database"))
	}
	if !envFileDefines(t, dir, services["clickhouse"], "CLICKHOUSE_PASSWORD") {
		t.Error("compose clickhouse: CLICKHOUSE_PASSWORD not from its env_file")
	}

	// Grafana: unsigned plugin ids, provisioning mounted, its secrets present.
	g := services["grafana"]
	gEnv, _ := get(g, "environment").(map[string]any)
	for _, id := range pluginIDs(t) {
		if !strings.Contains(fmt.Sprint(gEnv["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"]), id) {
			t.Errorf("compose grafana: %s not in GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS", id)
		}
	}
	if f := fmt.Sprint(gEnv["GF_SECURITY_ADMIN_PASSWORD__FILE"]); !containsStr(list(g, "secrets"), strings.TrimPrefix(f, "/run/secrets/")) {
		t.Errorf("compose grafana: admin password file %s is not a secret of the service", f)
	}
}

func colPortByName(m map[int]string, name string) int {
	for p, n := range m {
		if n == name {
			return p
		}
	}
	return 0
}

func checkHealthPort(t *testing.T, s any, name string, port int) {
	t.Helper()
	test := fmt.Sprint(get(s, "healthcheck", "test"))
	m := regexp.MustCompile(`http://[^ \]]+`).FindString(test)
	u, err := url.Parse(m)
	if err != nil || u.Port() != strconv.Itoa(port) {
		t.Errorf("compose %s: healthcheck %s does not target the admin port %d", name, test, port)
	}
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

func containsStr(l []any, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func envFileDefines(t *testing.T, dir string, s any, name string) bool {
	for _, ef := range list(s, "env_file") {
		b, err := os.ReadFile(filepath.Join(root, dir, ef.(string)+".example"))
		if err != nil {
			continue
		}
		if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `=`).Match(b) {
			return true
		}
	}
	return false
}

// ---------- Grafana provisioning ----------

func TestGrafanaProvisioning(t *testing.T) {
	const dir = "deploy/compose/config/grafana/provisioning"
	ids := pluginIDs(t)
	app := docs(t, dir+"/plugins/mcpwatch.yaml")[0]
	apps := list(app, "apps")
	if len(apps) != 1 || str(apps[0], "type") != ids[0] {
		t.Fatalf("plugins provisioning: apps %v, want type %s", apps, ids[0])
	}
	// jsonData / secureJsonData keys are the plugin backend's settings.
	settings := string(readFile(t, "grafana-plugin/pkg/plugin/settings.go"))
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`json:"(\w+)"`).FindAllStringSubmatch(settings, -1) {
		known[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`DecryptedSecureJSONData\["(\w+)"\]`).FindAllStringSubmatch(settings, -1) {
		known["secure:"+m[1]] = true
	}
	jd, _ := get(apps[0], "jsonData").(map[string]any)
	for k := range jd {
		if !known[k] {
			t.Errorf("plugins provisioning: jsonData.%s is not a plugin setting", k)
		}
	}
	var secureVars []string
	sd, _ := get(apps[0], "secureJsonData").(map[string]any)
	for k, v := range sd {
		if !known["secure:"+k] {
			t.Errorf("plugins provisioning: secureJsonData.%s is not a plugin setting", k)
		}
		m := regexp.MustCompile(`^\$\{(\w+)\}$`).FindStringSubmatch(fmt.Sprint(v))
		if m == nil {
			t.Errorf("plugins provisioning: secureJsonData.%s must be ${VAR} from the environment", k)
		} else {
			secureVars = append(secureVars, m[1])
		}
	}
	// The provisioned settings match the compose analyzer config.
	var an map[string]any
	if err := yaml.Unmarshal(readFile(t, "deploy/compose/config/analyzer.yaml"), &an); err != nil {
		t.Fatal(err)
	}
	if jd["database"] != str(an, "clickhouse", "database") || jd["username"] != str(an, "clickhouse", "username") {
		t.Errorf("plugin provisioning database/username %v/%v differ from the analyzer's", jd["database"], jd["username"])
	}
	if u, err := url.Parse(fmt.Sprint(jd["analyzerUrl"])); err != nil || u.Port() != strconv.Itoa(analyzerPort(t, "deploy/compose/config/analyzer.yaml")) {
		t.Errorf("plugin provisioning analyzerUrl %v does not reach the analyzer's admin_addr", jd["analyzerUrl"])
	}
	// The variables come from env files compose gives the grafana service.
	g := get(docs(t, "deploy/compose/compose.yaml")[0], "services", "grafana")
	for _, v := range secureVars {
		if !envFileDefines(t, "deploy/compose", g, v) {
			t.Errorf("plugin provisioning reads ${%s}, which no env_file of the compose grafana service defines", v)
		}
	}
	ds := list(docs(t, dir+"/datasources/mcpwatch.yaml")[0], "datasources")
	if len(ds) != 1 || str(ds[0], "type") != ids[1] {
		t.Errorf("datasource provisioning: %v, want type %s", ds, ids[1])
	}
	prov := list(docs(t, dir+"/dashboards/mcpwatch.yaml")[0], "providers")
	if len(prov) != 1 || str(prov[0], "options", "path") != "/var/lib/grafana/plugins/"+ids[0]+"/dashboards" {
		t.Errorf("dashboards provisioning: %v, want the plugin's dashboards dir", prov)
	}
}

// ---------- Kubernetes ----------

type k8sObj = map[string]any

func kubeObjects(t *testing.T) (objs []k8sObj, kust map[string]any) {
	const dir = "deploy/kubernetes"
	kust = docs(t, dir+"/kustomization.yaml")[0]
	for _, r := range list(kust, "resources") {
		objs = append(objs, docs(t, dir+"/"+r.(string))...)
	}
	return objs, kust
}

func TestKubernetes(t *testing.T) {
	const dir = "deploy/kubernetes"
	objs, kust := kubeObjects(t)

	generated := map[string]string{} // configmap name → file
	for _, g := range list(kust, "configMapGenerator") {
		for _, f := range list(g, "files") {
			parts := strings.SplitN(f.(string), "=", 2)
			if _, err := os.Stat(filepath.Join(root, dir, parts[len(parts)-1])); err != nil {
				t.Errorf("configMapGenerator %s: %v", str(g, "name"), err)
			}
			generated[str(g, "name")+"/"+parts[0]] = dir + "/" + parts[len(parts)-1]
		}
	}
	exampleSecrets := map[string]map[string]any{}
	for _, d := range docs(t, dir+"/examples/secrets.example.yaml") {
		sd, _ := get(d, "stringData").(map[string]any)
		exampleSecrets[str(d, "metadata", "name")] = sd
	}
	byKind := map[string][]k8sObj{}
	for _, o := range objs {
		k := str(o, "kind")
		byKind[k] = append(byKind[k], o)
		if k == "Secret" {
			t.Errorf("Secret %s is part of the kustomization; secrets must be created separately", str(o, "metadata", "name"))
		}
	}
	for _, want := range []string{"Namespace", "Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} {
		if len(byKind[want]) == 0 {
			t.Errorf("kubernetes: no %s", want)
		}
	}

	workloads := append(append([]k8sObj{}, byKind["Deployment"]...), byKind["StatefulSet"]...)
	configOf := map[string]string{"mcpwatch-collector": "collector", "mcpwatch-analyzer": "analyzer"}
	for _, w := range workloads {
		name := str(w, "metadata", "name")
		pod := get(w, "spec", "template", "spec")
		podSC := get(pod, "securityContext")
		sel, _ := get(w, "spec", "selector", "matchLabels").(map[string]any)
		labels, _ := get(w, "spec", "template", "metadata", "labels").(map[string]any)
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s: selector %s=%v does not match the pod labels", name, k, v)
			}
		}
		volumes := map[string]any{}
		for _, v := range list(pod, "volumes") {
			volumes[str(v, "name")] = v
		}
		if str(w, "kind") == "StatefulSet" {
			for _, vct := range list(w, "spec", "volumeClaimTemplates") {
				volumes[str(vct, "metadata", "name")] = map[string]any{"pvc": true}
			}
		}
		for _, c := range list(pod, "containers") {
			cn := name + "/" + str(c, "name")
			if err := checkPinned(str(c, "image")); err != nil {
				t.Errorf("%s: %v", cn, err)
			}
			for _, p := range []string{"readinessProbe", "livenessProbe"} {
				if get(c, p, "httpGet", "path") == nil {
					t.Errorf("%s: no %s", cn, p)
				}
			}
			if str(c, "readinessProbe", "httpGet", "path") != "/readyz" || str(c, "livenessProbe", "httpGet", "path") != "/healthz" {
				t.Errorf("%s: readiness must be /readyz and liveness /healthz", cn)
			}
			for _, rk := range []string{"requests", "limits"} {
				for _, res := range []string{"cpu", "memory"} {
					if get(c, "resources", rk, res) == nil {
						t.Errorf("%s: no resources.%s.%s", cn, rk, res)
					}
				}
			}
			sc := get(c, "securityContext")
			if get(sc, "runAsNonRoot") != true && get(podSC, "runAsNonRoot") != true {
				t.Errorf("%s: runAsNonRoot not set", cn)
			}
			if u := get(podSC, "runAsUser"); u == 0 {
				t.Errorf("%s: runAsUser 0", cn)
			}
			if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false {
				t.Errorf("%s: need readOnlyRootFilesystem: true and allowPrivilegeEscalation: false", cn)
			}
			if !containsStr(list(sc, "capabilities", "drop"), "ALL") {
				t.Errorf("%s: capabilities not dropped", cn)
			}
			// Ports by name, probes on the admin port.
			cports := map[string]int{}
			for _, p := range list(c, "ports") {
				cports[str(p, "name")] = intOf(get(p, "containerPort"))
			}
			for _, p := range []string{"readinessProbe", "livenessProbe"} {
				port := get(c, p, "httpGet", "port")
				if n, ok := port.(string); ok {
					port = cports[n]
				}
				if port != cports["admin"] || cports["admin"] == 0 {
					t.Errorf("%s: %s not on the admin port", cn, p)
				}
			}
			// Mounts exist as volumes.
			mounts := map[string]string{} // mountPath → volume
			for _, m := range list(c, "volumeMounts") {
				if volumes[str(m, "name")] == nil {
					t.Errorf("%s: volumeMount %s has no volume", cn, str(m, "name"))
				}
				mounts[str(m, "mountPath")] = str(m, "name")
			}
			kind := configOf[name]
			if kind == "" {
				t.Errorf("%s: unknown workload", name)
				continue
			}
			// --config points into a mounted generated ConfigMap.
			args := list(c, "args")
			var cfgPath string
			for i, a := range args {
				if a == "--config" && i+1 < len(args) {
					cfgPath = args[i+1].(string)
				}
			}
			vol := volumes[mounts[path.Dir(cfgPath)]]
			cfgFile := generated[str(vol, "configMap", "name")+"/"+path.Base(cfgPath)]
			if cfgFile == "" || cfgFile != dir+"/config/"+kind+".yaml" {
				t.Fatalf("%s: --config %s is not the generated ConfigMap of config/%s.yaml", cn, cfgPath, kind)
			}
			// Container ports = the config's listeners.
			var want map[int]string
			if kind == "collector" {
				want = collectorPorts(t, cfgFile)
			} else {
				want = map[int]string{analyzerPort(t, cfgFile): "admin"}
			}
			got := map[int]string{}
			for n, p := range cports {
				got[p] = n
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: container ports %v, config listens on %v", cn, got, want)
			}
			// Every file the config reads is in a mounted Secret that the
			// example documents with that key, or on a PVC.
			var m map[string]any
			if err := yaml.Unmarshal(readFile(t, cfgFile), &m); err != nil {
				t.Fatal(err)
			}
			files := map[string]string{}
			fileValues(m, "", files)
			for key, f := range files {
				v := volumes[mounts[path.Dir(f)]]
				sec := str(v, "secret", "secretName")
				if sec == "" {
					t.Errorf("%s: %s = %s is not in a mounted Secret", cn, key, f)
					continue
				}
				ex, ok := exampleSecrets[sec]
				if !ok {
					t.Errorf("%s: Secret %s is not documented in examples/secrets.example.yaml", cn, sec)
				} else if _, ok := ex[path.Base(f)]; !ok {
					t.Errorf("%s: example Secret %s lacks key %s read by %s", cn, sec, path.Base(f), key)
				}
			}
			for _, v := range volumes {
				if sec := str(v, "secret", "secretName"); sec != "" && exampleSecrets[sec] == nil {
					t.Errorf("%s: Secret %s is not documented in examples/secrets.example.yaml", name, sec)
				}
			}
			// The analyzer keeps its data dir on a PVC.
			if kind == "analyzer" {
				if v := volumes[mounts["/var/lib/mcpwatch"]]; get(v, "pvc") != true {
					t.Errorf("%s: /var/lib/mcpwatch is not a PersistentVolumeClaim", cn)
				}
			}
			// Services in front of the workload expose exactly its ports.
			for _, s := range byKind["Service"] {
				ssel, _ := get(s, "spec", "selector").(map[string]any)
				if ssel["app.kubernetes.io/name"] != sel["app.kubernetes.io/name"] {
					continue
				}
				for _, p := range list(s, "spec", "ports") {
					tp := get(p, "targetPort")
					if n, ok := tp.(string); ok {
						tp = cports[n]
					}
					if tp == 0 || tp == nil || want[intOf(tp)] == "" || intOf(get(p, "port")) != intOf(tp) {
						t.Errorf("Service %s: port %v → %v is not a %s listener %v", str(s, "metadata", "name"), get(p, "port"), get(p, "targetPort"), kind, want)
					}
				}
			}
		}
	}
	// HPA and PDBs target real workloads.
	names := map[string]bool{}
	for _, w := range workloads {
		names[str(w, "kind")+"/"+str(w, "metadata", "name")] = true
	}
	for _, h := range byKind["HorizontalPodAutoscaler"] {
		ref := str(h, "spec", "scaleTargetRef", "kind") + "/" + str(h, "spec", "scaleTargetRef", "name")
		if !names[ref] {
			t.Errorf("HPA %s targets unknown %s", str(h, "metadata", "name"), ref)
		}
	}
	// Migrations take no lock: with migrate_on_start the analyzer replicas
	// must start one at a time.
	for _, s := range byKind["StatefulSet"] {
		var m map[string]any
		if err := yaml.Unmarshal(readFile(t, dir+"/config/analyzer.yaml"), &m); err != nil {
			t.Fatal(err)
		}
		if p := str(s, "spec", "podManagementPolicy"); get(m, "migrate_on_start") != false && p != "" && p != "OrderedReady" {
			t.Errorf("analyzer StatefulSet podManagementPolicy %s with migrate_on_start: replicas would migrate concurrently", p)
		}
	}
	// Analyzer replicas do not exceed the topic's partitions.
	for _, s := range byKind["StatefulSet"] {
		var m map[string]any
		if err := yaml.Unmarshal(readFile(t, dir+"/config/analyzer.yaml"), &m); err != nil {
			t.Fatal(err)
		}
		if r, p := intOf(get(s, "spec", "replicas")), intOf(get(m, "kafka", "partitions")); r > p {
			t.Errorf("analyzer replicas %d > partitions %d: the extra replicas would idle", r, p)
		}
	}
}

// ---------- secrets ----------

// TestNoRealSecrets: Secret manifests hold only CHANGE_ME placeholders (and
// never base64 data), the compose secret examples are placeholders, and the
// redactor's own secret detectors find nothing else in deploy/ or the doc.
func TestNoRealSecrets(t *testing.T) {
	for _, f := range deployFiles(t, ".yaml", ".yml") {
		ds, err := decodeAll(readFile(t, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if str(d, "kind") != "Secret" {
				continue
			}
			n := str(d, "metadata", "name")
			if get(d, "data") != nil {
				t.Errorf("%s: Secret %s uses data (base64); examples must be readable placeholders in stringData", f, n)
			}
			sd, _ := get(d, "stringData").(map[string]any)
			for k, v := range sd {
				if !strings.HasPrefix(fmt.Sprint(v), "CHANGE_ME") {
					t.Errorf("%s: Secret %s key %s is not a CHANGE_ME placeholder", f, n, k)
				}
			}
		}
	}
	for _, f := range deployFiles(t, ".example") {
		if !strings.Contains(string(readFile(t, f)), "CHANGE_ME") {
			t.Errorf("%s: not a CHANGE_ME placeholder", f)
		}
	}
	r, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	all := append(deployFiles(t, ".yaml", ".yml", ".example", ".md", "Dockerfile.collector", "Dockerfile.analyzer", "Dockerfile.grafana", ".dockerignore", ".gitignore"), "docs/deploy.md")
	for _, f := range all {
		text := string(readFile(t, f))
		for _, m := range r.Find(text) {
			s := text[m.Start:m.End]
			if strings.Contains(s, "CHANGE_ME") || strings.Contains(s, "$__") || strings.Contains(s, "$(openssl") {
				continue
			}
			line := strings.Count(text[:m.Start], "\n") + 1
			t.Errorf("%s:%d: looks like a real secret (%s)", f, line, m.Kind)
		}
	}
	// The detectors do fire on a real-looking key (guards against a no-op check).
	if len(r.Find("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYabc\nAKIAIOSFODNN7EXAMPLQ")) == 0 {
		t.Fatal("redact.Find found nothing in a real-looking secret")
	}
}

// TestKustomizeBuild renders deploy/kubernetes with kustomize (kubectl's
// built-in) and checks what would be applied: every object in namespace
// mcpwatch, the generated (hash-suffixed) ConfigMaps referenced by the
// workloads and holding exactly config/*.yaml, and the rendered collector
// config accepted by the real collector.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl (with built-in kustomize) is needed to render deploy/kubernetes: install it")
	}
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(root, "deploy/kubernetes"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
	}
	objs, err := decodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	configMaps := map[string]map[string]any{}
	for _, o := range objs {
		if str(o, "kind") != "Namespace" && str(o, "metadata", "namespace") != "mcpwatch" {
			t.Errorf("%s %s: namespace %q", str(o, "kind"), str(o, "metadata", "name"), str(o, "metadata", "namespace"))
		}
		if str(o, "kind") == "ConfigMap" {
			d, _ := get(o, "data").(map[string]any)
			configMaps[str(o, "metadata", "name")] = d
		}
	}
	seen := 0
	for _, o := range objs {
		if k := str(o, "kind"); k != "Deployment" && k != "StatefulSet" {
			continue
		}
		for _, v := range list(o, "spec", "template", "spec", "volumes") {
			cm := str(v, "configMap", "name")
			if cm == "" {
				continue
			}
			data, ok := configMaps[cm]
			if !ok {
				t.Errorf("%s: ConfigMap %s is not rendered (generator name not rewritten?)", str(o, "metadata", "name"), cm)
				continue
			}
			for key, content := range data {
				src := "deploy/kubernetes/config/" + key
				if content != string(readFile(t, src)) {
					t.Errorf("ConfigMap %s key %s differs from %s", cm, key, src)
				}
				if key == "collector.yaml" {
					f := filepath.Join(t.TempDir(), key)
					if err := os.WriteFile(f, []byte(content.(string)), 0o600); err != nil {
						t.Fatal(err)
					}
					if out, err := runBin(t, cleanEnv(), "collector", "--config", f, "--check-config"); err != nil {
						t.Errorf("rendered ConfigMap %s: %v\n%s", cm, err, out)
					}
				}
				seen++
			}
		}
	}
	if seen != 2 {
		t.Errorf("found %d rendered config files mounted by workloads, want 2 (collector, analyzer)", seen)
	}
}

// TestStrimziExample: the example topics and users are the ones the
// Kubernetes configs use (names, partitions, SCRAM users, consumer group).
func TestStrimziExample(t *testing.T) {
	topics := map[string]int{}
	users := map[string]map[string]bool{} // user → "type/name:op"
	for _, d := range docs(t, "deploy/kubernetes/examples/strimzi.yaml") {
		switch str(d, "kind") {
		case "KafkaTopic":
			topics[str(d, "spec", "topicName")] = intOf(get(d, "spec", "partitions"))
		case "KafkaUser":
			if str(d, "spec", "authentication", "type") != "scram-sha-512" {
				t.Errorf("KafkaUser %s: want scram-sha-512", str(d, "metadata", "name"))
			}
			acl := map[string]bool{}
			for _, a := range list(d, "spec", "authorization", "acls") {
				for _, op := range list(a, "operations") {
					acl[str(a, "resource", "type")+"/"+str(a, "resource", "name")+":"+op.(string)] = true
				}
			}
			users[str(d, "metadata", "name")] = acl
		}
	}
	for _, rel := range []string{"deploy/kubernetes/config/collector.yaml", "deploy/kubernetes/config/analyzer.yaml"} {
		var c map[string]any
		if err := yaml.Unmarshal(readFile(t, rel), &c); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"topic", "findings_topic", "detect_topic", "detect_state_topic", "dead_letter_topic"} {
			name := str(c, "kafka", k)
			p, ok := topics[name]
			if !ok {
				t.Errorf("%s: kafka.%s %s has no KafkaTopic", rel, k, name)
			} else if want := intOf(get(c, "kafka", "partitions")); p != want {
				t.Errorf("%s: kafka.partitions %d, KafkaTopic %s has %d", rel, want, name, p)
			}
		}
		if get(c, "kafka", "create_topics") != false {
			t.Errorf("%s: topics are KafkaTopic resources; set kafka.create_topics: false", rel)
		}
		user := str(c, "kafka", "sasl", "username")
		acl, ok := users[user]
		if !ok {
			t.Errorf("%s: kafka.sasl.username %s has no KafkaUser", rel, user)
			continue
		}
		events := str(c, "kafka", "topic")
		if strings.Contains(rel, "collector") {
			if !acl["topic/"+events+":Write"] {
				t.Errorf("KafkaUser %s cannot write %s", user, events)
			}
		} else {
			group := str(c, "analyzer", "group")
			if !acl["topic/"+events+":Read"] || !acl["group/"+group+":Read"] {
				t.Errorf("KafkaUser %s cannot read %s as group %s", user, events, group)
			}
			if dlq := str(c, "kafka", "dead_letter_topic"); !acl["topic/"+dlq+":Write"] {
				t.Errorf("KafkaUser %s cannot write the dead-letter topic %s", user, dlq)
			}
			// The ingest role's gate reads and writes the first-steps topic;
			// without it (create_topics off) every later step is forwarded.
			steps := str(c, "kafka", "detect_steps_topic")
			if p, ok := topics[steps]; !ok || p != 1 {
				t.Errorf("%s: kafka.detect_steps_topic %q needs a KafkaTopic of 1 partition (have %d)", rel, steps, p)
			}
			if !acl["topic/"+steps+":Read"] || !acl["topic/"+steps+":Write"] {
				t.Errorf("KafkaUser %s cannot read and write the first-steps topic %s", user, steps)
			}
			// The call join: the ingest role writes halves to the calls
			// topic, its join loop reads them (group <group>-join) and
			// writes the completed observations back to the events topic.
			calls := str(c, "kafka", "calls_topic")
			if p, ok := topics[calls]; !ok || p != intOf(get(c, "kafka", "partitions")) {
				t.Errorf("%s: kafka.calls_topic %q needs a KafkaTopic of kafka.partitions partitions (have %d)", rel, calls, p)
			}
			if !acl["topic/"+calls+":Read"] || !acl["topic/"+calls+":Write"] || !acl["topic/"+events+":Write"] {
				t.Errorf("KafkaUser %s cannot read and write the calls topic %s and write the events topic %s", user, calls, events)
			}
		}
	}
}

// TestComposeConfigsPipeline runs the real collector with the
// compose collector.yaml (only the docker-secret path and the addresses
// replaced, as compose's mounts and network would) against a Kafka (kfake),
// sends a real OTLP capture and checks the token from the secret file
// authenticates tenant "default" while a missing token is refused; then the
// real analyzer with the compose analyzer.yaml stores those events in a real
// ClickHouse.
func TestComposeConfigsPipeline(t *testing.T) {
	k := testbed.Kfake(t)
	dir := t.TempDir()
	token := "deploy-test-token-0123456789abcdef"
	tokenFile := filepath.Join(dir, "otlp_token_default")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := readFile(t, "deploy/compose/config/collector.yaml")
	if !bytes.Contains(src, []byte("/run/secrets/otlp_token_default")) {
		t.Fatal("compose collector.yaml no longer reads /run/secrets/otlp_token_default; update this test")
	}
	keyFile := filepath.Join(dir, "redact_key")
	if err := os.WriteFile(keyFile, []byte("deploy-test-redaction-key-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("/run/secrets/redact_key")) {
		t.Fatal("compose collector.yaml no longer reads /run/secrets/redact_key; update this test")
	}
	cfg := filepath.Join(dir, "collector.yaml")
	src = bytes.ReplaceAll(src, []byte("/run/secrets/otlp_token_default"), []byte(tokenFile))
	if err := os.WriteFile(cfg, bytes.ReplaceAll(src, []byte("/run/secrets/redact_key"), []byte(keyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	var topic string
	{
		var m map[string]any
		if err := yaml.Unmarshal(src, &m); err != nil {
			t.Fatal(err)
		}
		topic = str(m, "kafka", "topic")
	}
	httpAddr, grpcAddr, adminAddr := closedAddr(t), closedAddr(t), closedAddr(t)
	cmd := exec.Command(filepath.Join(binaries(t), "collector"), "--config", cfg,
		"--kafka.brokers="+strings.Join(k.Brokers, ","), "--receiver.http.endpoint="+httpAddr,
		"--receiver.grpc.endpoint="+grpcAddr, "--admin.endpoint="+adminAddr)
	cmd.Env = cleanEnv()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); exited <- waitErr; close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-done // not <-exited: the readiness wait may have taken the exit already
		if waitErr != nil {
			t.Logf("collector exit: %v\n%s", waitErr, logs.String())
		}
	})
	// Wait for readiness (Kafka reachable, topic created by create_topics).
	// The deadline only turns a hang into a clear failure.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for ready := false; !ready; {
		select {
		case err := <-exited:
			t.Fatalf("collector exited: %v\n%s", err, logs.String())
		case <-ctx.Done():
			t.Fatalf("collector never ready:\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if r, err := http.Get("http://" + adminAddr + "/readyz"); err == nil {
			ready = r.StatusCode == http.StatusOK
			r.Body.Close()
		}
	}
	// A real capture (OpenLLMetry/traceloop MCP instrumentation, JSON OTLP).
	body := readFile(t, "internal/event/testdata/traceloop-mcp-0.27.0/traces-0005.json")
	post := func(auth string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/v1/traces", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST /v1/traces: %d %s", r.StatusCode, b)
		}
		return r.StatusCode
	}
	if c := post(""); c != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", c)
	}
	if c := post("Bearer wrong-token-wrong-token"); c != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", c)
	}
	if c := post("Bearer " + token); c != http.StatusOK {
		t.Fatalf("token from the secret file: %d, want 200\n%s", c, logs.String())
	}
	// The events are in Kafka, attributed to tenant "default".
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var events []event.Event
	for len(events) == 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no record in Kafka")
		}
		fs.EachRecord(func(r *kgo.Record) {
			evs, err := event.Unmarshal(r.Value)
			if err != nil {
				t.Errorf("record: %v", err)
			}
			events = append(events, evs...)
		})
	}
	for _, e := range events {
		if e.Tenant != "default" {
			t.Errorf("event tenant %q, want default (from the token)", e.Tenant)
		}
	}

	// The compose analyzer config consumes them into ClickHouse (addresses
	// overridden by the analyzer's env variables, as compose's network
	// names would resolve them).
	ch := testbed.ClickHouse(t)
	var an map[string]any
	if err := yaml.Unmarshal(readFile(t, analyzerConfigs[0]), &an); err != nil {
		t.Fatal(err)
	}
	// The data volume (/var/lib/mcpwatch) becomes a temp dir, as compose
	// mounts analyzer-data there; the API token comes from the env_file.
	asrc := readFile(t, analyzerConfigs[0])
	if !bytes.Contains(asrc, []byte("data_dir: /var/lib/mcpwatch")) {
		t.Fatal("compose analyzer.yaml no longer keeps its data in /var/lib/mcpwatch; update this test")
	}
	acfg := filepath.Join(dir, "analyzer.yaml")
	if err := os.WriteFile(acfg, bytes.ReplaceAll(asrc, []byte("/var/lib/mcpwatch"), []byte(filepath.Join(dir, "analyzer-data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	acmd := exec.Command(filepath.Join(binaries(t), "analyzer"), "run", "--config", acfg)
	acmd.Env = cleanEnv("MCPWATCH_API_TOKEN_GRAFANA=deploy-test-api-token-0123456789",
		"MCPWATCH_KAFKA_BROKERS="+strings.Join(k.Brokers, ","), "MCPWATCH_CLICKHOUSE_ADDR="+ch.Addr,
		"MCPWATCH_CLICKHOUSE_DATABASE="+ch.Database, "MCPWATCH_CLICKHOUSE_USERNAME="+ch.Username,
		str(an, "clickhouse", "password_env")+"=", "MCPWATCH_ANALYZER_ADMIN_ADDR="+closedAddr(t))
	var alogs bytes.Buffer
	acmd.Stdout, acmd.Stderr = &alogs, &alogs
	if err := acmd.Start(); err != nil {
		t.Fatal(err)
	}
	aexited := make(chan error, 1)
	go func() { aexited <- acmd.Wait() }()
	defer func() {
		_ = acmd.Process.Signal(os.Interrupt)
		if err := <-aexited; err != nil {
			t.Logf("analyzer exit: %v\n%s", err, alogs.String())
		}
	}()
	ids := map[string]bool{}
	for _, e := range events {
		ids[e.EventID] = true
	}
	conn := ch.Conn(t)
	for {
		select {
		case err := <-aexited:
			aexited <- err
			t.Fatalf("analyzer exited: %v\n%s", err, alogs.String())
		case <-ctx.Done():
			t.Fatalf("events never reached ClickHouse:\n%s", alogs.String())
		case <-time.After(200 * time.Millisecond):
		}
		rows, err := conn.Query(ctx, "SELECT DISTINCT event_id FROM "+ch.Database+".events WHERE tenant = 'default'")
		if err != nil {
			continue // tables not migrated yet
		}
		stored := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			stored[id] = true
		}
		rows.Close()
		missing := 0
		for id := range ids {
			if !stored[id] {
				missing++
			}
		}
		if missing == 0 {
			t.Logf("%d events: OTLP → collector → Kafka → analyzer → ClickHouse", len(ids))
			return
		}
	}
}

// The compose Grafana provisions the same alert rules as the generic
// provisioning files (a copy, since compose mounts its own provisioning
// directory); its contact point differs only in the analyzer's address and
// token variable.
func TestComposeAlertingMatchesProvisioning(t *testing.T) {
	if !bytes.Equal(readFile(t, "deploy/compose/config/grafana/provisioning/alerting/alert-rules.yaml"),
		readFile(t, "dashboards/provisioning/alerting/alert-rules.yaml")) {
		t.Error("deploy/compose/config/grafana/provisioning/alerting/alert-rules.yaml differs from dashboards/provisioning/alerting/alert-rules.yaml: copy it again")
	}
	cp := string(readFile(t, "deploy/compose/config/grafana/provisioning/alerting/contact-points.yaml"))
	for _, want := range []string{"url: http://analyzer:9464/api/v1/alerts/grafana", "authorization_credentials: $MCPWATCH_API_TOKEN_GRAFANA"} {
		if !strings.Contains(cp, want) {
			t.Errorf("compose contact point lacks %q", want)
		}
	}
}
