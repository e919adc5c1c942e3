package plugin

import (
	"context"
	"fmt"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/app"
	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
)

// DataSourceID is the nested data source's plugin id
// (src/datasource/plugin.json). Its plugin.json names the app's executable
// ("../gpx_mcpwatch"), so Grafana runs the same binary for both ids.
const DataSourceID = "mcpwatch-mcpwatch-datasource"

// Make sure Handler serves what Grafana calls for both plugin ids.
var (
	_ backend.QueryDataHandler    = (*Handler)(nil)
	_ backend.CallResourceHandler = (*Handler)(nil)
	_ backend.CheckHealthHandler  = (*Handler)(nil)
)

// Handler serves the app and the nested data source from one executable.
// Grafana starts a process per plugin id; each request says which one it
// is for: a data source request carries DataSourceInstanceSettings (its
// own jsonData and secureJsonData), an app request AppInstanceSettings.
// Both build an App over their settings, so the data source answers the
// same query types within the tenants of its own jsonData.tenantAccess.
type Handler struct {
	apps, sources instancemgmt.InstanceManager
}

// NewHandler returns a Handler with an instance manager per plugin id.
func NewHandler() *Handler {
	return &Handler{apps: app.NewInstanceManager(NewApp), sources: datasource.NewInstanceManager(NewDataSource)}
}

// NewDataSource is the datasource.InstanceFactoryFunc.
func NewDataSource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	st, err := LoadDataSourceSettings(s)
	if err != nil {
		return nil, err
	}
	return New(st)
}

func (h *Handler) instance(ctx context.Context, pc backend.PluginContext) (*App, error) {
	im := h.apps
	if pc.DataSourceInstanceSettings != nil {
		im = h.sources
	}
	inst, err := im.Get(ctx, pc)
	if err != nil {
		return nil, err
	}
	a, ok := inst.(*App)
	if !ok {
		return nil, fmt.Errorf("unexpected plugin instance %T", inst)
	}
	return a, nil
}

// QueryData answers from the instance of the request's plugin id.
func (h *Handler) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	a, err := h.instance(ctx, req.PluginContext)
	if err != nil {
		return nil, err
	}
	return a.QueryData(ctx, req)
}

// CallResource answers from the instance of the request's plugin id.
func (h *Handler) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	a, err := h.instance(ctx, req.PluginContext)
	if err != nil {
		return err
	}
	return a.CallResource(ctx, req, sender)
}

// CheckHealth checks the instance of the request's plugin id.
func (h *Handler) CheckHealth(ctx context.Context, req *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	a, err := h.instance(ctx, req.PluginContext)
	if err != nil {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: err.Error()}, nil
	}
	return a.CheckHealth(ctx, req)
}
