// Command hostserver is the browser-test stand-in for Grafana's plugin
// host. It starts the real backend binary (dist/gpx_mcpwatch_linux_<arch>)
// through hashicorp/go-plugin with the SDK's handshake, as Grafana does,
// and routes /api/plugins/<id>/resources/* to it over the CallResource gRPC
// stream (with a Grafana user and the app's instance settings in the plugin
// context), /api/plugins/<id>/health to CheckHealth, /api/ds/query to
// QueryData (with the nested data source's instance settings, as Grafana
// sends a data source's queries) and keeps the app's settings in memory. It serves the host page (browser/host-dist) and the
// built plugin (dist/) and, unless MCPWATCH_TEST_CLICKHOUSE is set, starts
// its own ClickHouse with the schema and the seed data set. It also serves a
// stand-in for the analyzer's incident API (see standin.go), because the
// plugin module must not depend on the root module's internal/api.
//
// It prints "READY <base URL>" once serving and writes the seed summary to
// -summary; SIGINT/SIGTERM stops the plugin and ClickHouse.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/chserver"
	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

const pluginID = "mcpwatch-mcpwatch-app"

func main() {
	if err := run(); err != nil {
		slog.Error("hostserver failed", "err", err)
		os.Exit(1)
	}
}

func run() error {
	dist := flag.String("dist", "dist", "built plugin directory")
	hostDir := flag.String("host", "browser/host-dist", "built host page bundle")
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	summaryPath := flag.String("summary", "", "write the seed summary JSON here")
	token := flag.String("analyzer-token", "e2e-token", "token the stand-in analyzer accepts")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	chAddr := os.Getenv("MCPWATCH_TEST_CLICKHOUSE")
	if chAddr == "" {
		dir, err := os.MkdirTemp("", "mcpwatch-host-ch-")
		if err != nil {
			return fmt.Errorf("cannot create temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
		srv, err := chserver.Start(ctx, dir)
		if err != nil {
			return err
		}
		defer srv.Stop()
		chAddr = srv.Addr
	}
	db := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	if err := chserver.CreateSchema(ctx, chAddr, db); err != nil {
		return err
	}
	defer func() { _ = chserver.Exec(context.Background(), chAddr, "DROP DATABASE IF EXISTS "+db) }()
	conn, err := seed.Open(chAddr, db)
	if err != nil {
		return err
	}
	defer conn.Close()
	sum, err := seed.Seed(ctx, conn, db, time.Now())
	if err != nil {
		return err
	}
	if *summaryPath != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(*summaryPath, b, 0o644); err != nil {
			return fmt.Errorf("cannot write summary: %w", err)
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("cannot listen: %w", err)
	}
	base := "http://" + ln.Addr().String()

	bin, err := filepath.Abs(filepath.Join(*dist, "gpx_mcpwatch_linux_"+runtime.GOARCH))
	if err != nil {
		return err
	}
	pc, err := startPlugin(bin)
	if err != nil {
		return err
	}
	defer pc.kill()

	h := &host{
		plugin: pc, dist: *dist, hostDir: *hostDir,
		standin: &standin{conn: conn, db: db, token: *token},
		settings: appSettings{
			Enabled: true,
			JSONData: map[string]any{
				"clickhouseAddress": chAddr, "database": db, "username": "default",
				"analyzerUrl": base + "/analyzer",
			},
			Secure:  map[string]string{"analyzerToken": *token},
			Updated: time.Now().UnixMilli(),
		},
	}
	srv := &http.Server{Handler: h.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println("READY " + base)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

type pluginClient struct {
	client    *goplugin.Client
	resource  pluginv2.ResourceClient
	diagnosis pluginv2.DiagnosticsClient
	data      pluginv2.DataClient
}

func (p *pluginClient) kill() { p.client.Kill() }

// startPlugin launches the backend like Grafana: go-plugin, protocol
// version 2, magic cookie grafana_plugin_type=datasource, gRPC only.
func startPlugin(bin string) (*pluginClient, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "GF_PLUGIN_APP_CLIENT_SECRET=", "GF_VERSION=13.2.2")
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{
			grpcplugin.ProtocolVersion: {
				"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
				"resource":    &grpcplugin.ResourceGRPCPlugin{},
				"data":        &grpcplugin.DataGRPCPlugin{},
			},
		},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: os.Stderr}),
		StartTimeout:     30 * time.Second,
	})
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("cannot start plugin %s: %w", bin, err)
	}
	r, err := rpc.Dispense("resource")
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("cannot dispense resource client: %w", err)
	}
	d, err := rpc.Dispense("diagnostics")
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("cannot dispense diagnostics client: %w", err)
	}
	q, err := rpc.Dispense("data")
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("cannot dispense data client: %w", err)
	}
	return &pluginClient{client: c, resource: r.(pluginv2.ResourceClient), diagnosis: d.(pluginv2.DiagnosticsClient), data: q.(pluginv2.DataClient)}, nil
}

type appSettings struct {
	Enabled  bool
	JSONData map[string]any
	Secure   map[string]string
	Updated  int64
}

type host struct {
	plugin   *pluginClient
	dist     string
	hostDir  string
	standin  *standin
	mu       sync.Mutex
	settings appSettings
}

// user is the Grafana user of a request: cookie grafana_role (Viewer,
// Editor, Admin; default Admin) and grafana_login (default "admin").
func user(r *http.Request) *pluginv2.User {
	role, login := "Admin", "admin"
	if c, err := r.Cookie("grafana_role"); err == nil && c.Value != "" {
		role = c.Value
	}
	if c, err := r.Cookie("grafana_login"); err == nil && c.Value != "" {
		login = c.Value
	}
	return &pluginv2.User{Login: login, Name: login, Email: login + "@example.test", Role: role}
}

func (h *host) pluginContext(r *http.Request) *pluginv2.PluginContext {
	h.mu.Lock()
	defer h.mu.Unlock()
	jd, _ := json.Marshal(h.settings.JSONData)
	sec := map[string]string{}
	for k, v := range h.settings.Secure {
		sec[k] = v
	}
	return &pluginv2.PluginContext{
		OrgId: 1, PluginId: pluginID, User: user(r),
		AppInstanceSettings: &pluginv2.AppInstanceSettings{JsonData: jd, DecryptedSecureJsonData: sec, LastUpdatedMS: h.settings.Updated},
		GrafanaConfig:       map[string]string{"GF_APP_URL": "http://" + r.Host + "/"},
	}
}

func (h *host) routes() http.Handler {
	mux := http.NewServeMux()
	prefix := "/api/plugins/" + pluginID
	mux.HandleFunc(prefix+"/resources/", h.resource)
	mux.HandleFunc("GET "+prefix+"/health", h.health)
	mux.HandleFunc("POST /api/ds/query", h.dsQuery)
	mux.HandleFunc("GET "+prefix+"/settings", h.getSettings)
	mux.HandleFunc("POST "+prefix+"/settings", h.postSettings)
	mux.Handle("/public/plugins/"+pluginID+"/", http.StripPrefix("/public/plugins/"+pluginID+"/", http.FileServer(http.Dir(h.dist))))
	mux.Handle("/host/", http.StripPrefix("/host/", http.FileServer(http.Dir(h.hostDir))))
	mux.Handle("/analyzer/", http.StripPrefix("/analyzer", h.standin.routes()))
	mux.HandleFunc("/a/", h.page)
	mux.HandleFunc("/plugins/", h.page)
	return mux
}

func (h *host) resource(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/api/plugins/"+pluginID+"/resources/")
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	url := rest
	if r.URL.RawQuery != "" {
		url += "?" + r.URL.RawQuery
	}
	headers := map[string]*pluginv2.StringList{}
	for k, v := range r.Header {
		if strings.EqualFold(k, "Cookie") || strings.EqualFold(k, "Authorization") {
			continue // Grafana strips these before forwarding to plugins
		}
		headers[k] = &pluginv2.StringList{Values: v}
	}
	stream, err := h.plugin.resource.CallResource(r.Context(), &pluginv2.CallResourceRequest{
		PluginContext: h.pluginContext(r), Path: rest, Method: r.Method, Url: url, Headers: headers, Body: body,
	})
	if err != nil {
		http.Error(w, "cannot call plugin resource: "+err.Error(), http.StatusBadGateway)
		return
	}
	first := true
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return
		}
		if err != nil {
			if first {
				http.Error(w, "plugin resource failed: "+err.Error(), http.StatusBadGateway)
			}
			return
		}
		if first {
			for k, v := range msg.Headers {
				for _, s := range v.Values {
					w.Header().Add(k, s)
				}
			}
			w.WriteHeader(int(msg.Code))
			first = false
		}
		_, _ = w.Write(msg.Body)
	}
}

func (h *host) health(w http.ResponseWriter, r *http.Request) {
	res, err := h.plugin.diagnosis.CheckHealth(r.Context(), &pluginv2.CheckHealthRequest{PluginContext: h.pluginContext(r)})
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ERROR", "message": err.Error()})
		return
	}
	status := map[pluginv2.CheckHealthResponse_HealthStatus]string{pluginv2.CheckHealthResponse_OK: "OK", pluginv2.CheckHealthResponse_ERROR: "ERROR"}[res.Status]
	if status == "" {
		status = "UNKNOWN"
	}
	if status != "OK" {
		w.WriteHeader(http.StatusBadRequest) // what Grafana answers for a failing health check
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": status, "message": res.Message})
}

func (h *host) getSettings(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sec := map[string]bool{}
	for k, v := range h.settings.Secure {
		sec[k] = v != ""
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": pluginID, "type": "app", "name": "mcpwatch", "enabled": h.settings.Enabled, "pinned": true,
		"jsonData": h.settings.JSONData, "secureJsonFields": sec,
		"info":    map[string]any{"version": "dev", "logos": map[string]string{}, "author": map[string]string{"name": "mcpwatch"}},
		"baseUrl": "public/plugins/" + pluginID, "module": "public/plugins/" + pluginID + "/module.js",
	})
}

func (h *host) postSettings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Enabled        bool              `json:"enabled"`
		JSONData       map[string]any    `json:"jsonData"`
		SecureJSONData map[string]string `json:"secureJsonData"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if user(r).Role != "Admin" {
		http.Error(w, `{"message":"only admins may change plugin settings"}`, http.StatusForbidden)
		return
	}
	h.mu.Lock()
	h.settings.Enabled = req.Enabled
	if req.JSONData != nil {
		h.settings.JSONData = req.JSONData
	}
	for k, v := range req.SecureJSONData { // as Grafana: only sent keys change
		h.settings.Secure[k] = v
	}
	h.settings.Updated = time.Now().UnixMilli() // makes the SDK recreate the instance
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"message":"Plugin settings updated"}`)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>mcpwatch (test host)</title>
<script>window.grafanaBootData = {{.}};</script>
</head><body><div id="root"></div><script src="/host/host.js"></script></body></html>`))

func (h *host) page(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	boot := map[string]any{
		"assets":  map[string]string{"dark": "", "light": ""},
		"navTree": []any{},
		"settings": map[string]any{
			"appSubUrl": "", "buildInfo": map[string]any{"version": "13.2.2", "env": "production"}, "featureToggles": map[string]any{},
			"datasources": dsBoot(), "defaultDatasource": dsName, "panels": map[string]any{}, "apps": map[string]any{},
		},
		"user": map[string]any{"login": u.Login, "name": u.Name, "orgRole": u.Role, "orgId": 1, "isSignedIn": true, "theme": "dark", "timezone": "utc"},
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, boot)
}
