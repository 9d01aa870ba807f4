package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// NewClient is an HTTP/1.1 client that keeps one connection per worker
// alive, for n workers against one host: every measured request reuses a
// connection, as a gateway in front of a function does.
func NewClient(n int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        n,
			MaxIdleConnsPerHost: n,
			MaxConnsPerHost:     n,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			// A list page (20 kB) in one read instead of five: the load
			// generator shares the CPUs it measures, so it should take
			// as little of them as it can.
			ReadBufferSize: 64 << 10,
		},
		Timeout: 10 * time.Second,
	}
}

// HTTP is a Step that sends the request build makes for the worker and
// wants status back. The body is read to the end, so the connection is
// reused and the response counts in full.
func HTTP(client *http.Client, want int, build func(ctx context.Context, worker int) (*http.Request, error)) Step {
	return func(ctx context.Context, worker int) error {
		req, err := build(ctx, worker)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("%s %s: status %d, want %d", req.Method, req.URL.Path, resp.StatusCode, want)
		}
		return err
	}
}
