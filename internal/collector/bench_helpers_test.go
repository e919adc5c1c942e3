package collector

import (
	"io"
	"net/http"
)

func io_Copy(resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(io.Discard, resp.Body)
}
