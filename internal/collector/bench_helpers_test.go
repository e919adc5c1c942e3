package collector

import (
	"io"
	"net/http"
	"testing"
)

func io_Copy(resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(io.Discard, resp.Body)
}

func TestParseCPUList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{
		{"0-1", "0,1"},
		{"0", "0"},
		{"0,2-4,7", "0,2,3,4,7"},
		{"", ""},
		{"3-1", ""},
		{"a-b", ""},
		{"0-", ""},
	} {
		if got := cpuList(parseCPUList(tt.in)); got != tt.want {
			t.Errorf("parseCPUList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
