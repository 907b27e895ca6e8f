package refreshsock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// Request asks the tokend serving the socket at path for an exchange now
// and returns its answer. A nil error means the exchange succeeded; any
// other outcome is an error saying what to do. It is safe for concurrent
// use.
func Request(ctx context.Context, path string) (Response, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://tokend/v1/refresh", nil)
	if err != nil {
		return Response{}, err
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return Response{}, fmt.Errorf("refreshsock: cannot connect to %s: is tokend running with --refresh-socket set to this path, and is the directory shared with this container? (%v)", path, oe.Err)
		}
		return Response{}, fmt.Errorf("refreshsock: %w", err)
	}
	defer res.Body.Close()
	var resp Response
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("refreshsock: %s answered %s without a valid body: %v", path, res.Status, err)
	}
	if res.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("refreshsock: refresh failed (%s): %s", res.Status, resp.Error)
	}
	return resp, nil
}
