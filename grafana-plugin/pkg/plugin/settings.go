package plugin

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Settings is the app's configuration (jsonData + secureJsonData).
type Settings struct {
	// ClickHouseAddress is host:port of the native protocol. Default "localhost:9000".
	ClickHouseAddress string `json:"clickhouseAddress"`
	// Database holding the mcpwatch tables. Default "mcpwatch".
	Database string `json:"database"`
	// Username for ClickHouse. Default "default".
	Username string `json:"username"`
	// AnalyzerURL is the analyzer API base URL, e.g. http://analyzer:8080. Empty disables incident actions.
	AnalyzerURL string `json:"analyzerUrl"`
	// TimeoutSeconds bounds every ClickHouse query. Default 30.
	TimeoutSeconds int `json:"timeoutSeconds"`
	// TenantAccess maps Grafana orgs, roles and logins to the tenants they
	// may read; absent = every user reads every tenant (TenantAccess).
	TenantAccess *TenantAccess `json:"tenantAccess"`

	Password      string `json:"-"` // secureJsonData.password
	AnalyzerToken string `json:"-"` // secureJsonData.analyzerToken
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// LoadSettings parses and validates the app instance settings.
func LoadSettings(s backend.AppInstanceSettings) (Settings, error) {
	st, err := parseSettings(s.JSONData)
	st.Password = s.DecryptedSecureJSONData["password"]
	st.AnalyzerToken = s.DecryptedSecureJSONData["analyzerToken"]
	return st, err
}

// LoadDataSourceSettings parses and validates a data source instance's
// settings: the same jsonData and secureJsonData fields as the app's (a
// data source query reaches the plugin with its own settings only, never
// the app's).
func LoadDataSourceSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	st, err := parseSettings(s.JSONData)
	st.Password = s.DecryptedSecureJSONData["password"]
	return st, err
}

// parseSettings reads and validates jsonData (the secrets are the caller's).
func parseSettings(jsonData []byte) (Settings, error) {
	var st Settings
	if len(jsonData) > 0 {
		if err := json.Unmarshal(jsonData, &st); err != nil {
			return st, fmt.Errorf("cannot parse plugin settings: %w", err)
		}
	}
	if st.ClickHouseAddress == "" {
		st.ClickHouseAddress = "localhost:9000"
	}
	if st.Database == "" {
		st.Database = "mcpwatch"
	}
	if st.Username == "" {
		st.Username = "default"
	}
	if st.TimeoutSeconds <= 0 {
		st.TimeoutSeconds = 30
	}
	st.AnalyzerURL = strings.TrimRight(st.AnalyzerURL, "/")
	// The database name is spliced into SQL as an identifier (it cannot be a
	// bound parameter), so only plain identifiers are accepted.
	if !identRe.MatchString(st.Database) {
		return st, fmt.Errorf("invalid database name %q: use letters, digits and underscores", st.Database)
	}
	return st, st.TenantAccess.Validate()
}
