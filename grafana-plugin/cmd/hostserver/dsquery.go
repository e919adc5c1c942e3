package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// The nested data source as the host's one configured instance: its uid,
// name and type, also in the page's boot data (config.datasources).
const (
	dsUID  = "mcpwatch"
	dsName = "mcpwatch"
	dsType = "mcpwatch-mcpwatch-datasource"
)

// dsSettings is the data source's jsonData: the app's ClickHouse and
// tenantAccess (a real Grafana data source has its own copy of them).
func (h *host) dsSettings() *pluginv2.DataSourceInstanceSettings {
	h.mu.Lock()
	defer h.mu.Unlock()
	jd := map[string]any{}
	for _, k := range []string{"clickhouseAddress", "database", "username", "timeoutSeconds", "tenantAccess"} {
		if v, ok := h.settings.JSONData[k]; ok {
			jd[k] = v
		}
	}
	b, _ := json.Marshal(jd)
	return &pluginv2.DataSourceInstanceSettings{Id: 1, Uid: dsUID, Name: dsName, JsonData: b, DecryptedSecureJsonData: map[string]string{}, LastUpdatedMS: h.settings.Updated}
}

// dsQuery is Grafana's POST /api/ds/query for the mcpwatch data source:
// from/to (epoch ms, strings or numbers) and queries with a datasource ref;
// it calls the backend's QueryData with the user's plugin context and
// answers {"results": {refId: {frames: [...]}}} as Grafana does.
func (h *host) dsQuery(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From    json.Number       `json:"from"`
		To      json.Number       `json:"to"`
		Queries []json.RawMessage `json:"queries"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "bad request: " + err.Error()})
		return
	}
	from, err1 := strconv.ParseInt(string(req.From), 10, 64)
	to, err2 := strconv.ParseInt(string(req.To), 10, 64)
	if err1 != nil || err2 != nil || len(req.Queries) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "from, to (epoch ms) and queries are required"})
		return
	}
	pq := &pluginv2.QueryDataRequest{PluginContext: h.pluginContext(r)}
	pq.PluginContext.PluginId = dsType
	pq.PluginContext.AppInstanceSettings = nil
	pq.PluginContext.DataSourceInstanceSettings = h.dsSettings()
	for _, raw := range req.Queries {
		var head struct {
			RefID         string `json:"refId"`
			QueryType     string `json:"queryType"`
			IntervalMs    int64  `json:"intervalMs"`
			MaxDataPoints int64  `json:"maxDataPoints"`
			Datasource    struct {
				UID  string `json:"uid"`
				Type string `json:"type"`
			} `json:"datasource"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "bad query: " + err.Error()})
			return
		}
		if head.Datasource.UID != dsUID {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf("data source %q not found", head.Datasource.UID)})
			return
		}
		pq.Queries = append(pq.Queries, &pluginv2.DataQuery{
			RefId: head.RefID, QueryType: head.QueryType, IntervalMS: head.IntervalMs, MaxDataPoints: head.MaxDataPoints,
			TimeRange: &pluginv2.TimeRange{FromEpochMS: from, ToEpochMS: to}, Json: raw,
		})
	}
	res, err := h.plugin.data.QueryData(r.Context(), pq)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"message": "query failed: " + err.Error()})
		return
	}
	out, err := backend.FromProto().QueryDataResponse(res)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	// Grafana answers 207 when a query failed and 200 otherwise; the body
	// carries each refId's error and status.
	code := http.StatusOK
	for _, d := range out.Responses {
		if d.Error != nil {
			code = http.StatusMultiStatus
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// dsBoot is the data source's entry in the page's boot data
// (config.datasources), as Grafana lists configured data sources.
func dsBoot() map[string]any {
	return map[string]any{
		dsName: map[string]any{
			"id": 1, "uid": dsUID, "name": dsName, "type": dsType, "access": "proxy", "isDefault": true, "jsonData": map[string]any{}, "readOnly": false,
			"meta": map[string]any{
				"id": dsType, "type": "datasource", "name": "mcpwatch data source", "backend": true, "metrics": true, "alerting": true,
				"module": "public/plugins/" + pluginID + "/datasource/module.js", "baseUrl": "public/plugins/" + pluginID + "/datasource",
				"info": map[string]any{"version": "dev", "logos": map[string]string{"small": "", "large": ""}, "author": map[string]string{"name": "mcpwatch"}},
			},
		},
	}
}
