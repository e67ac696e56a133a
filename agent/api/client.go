package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Client talks to an agent over its unix socket (or, read-only, over TCP:
// NewTCPClient).
type Client struct {
	socket string // where the agent is, for messages
	base   string // the URL's scheme and host
	http   *http.Client
}

// NewClient returns a client for the agent listening on socket.
func NewClient(socket string) *Client {
	return &Client{
		socket: socket,
		base:   "http://agent",
		http: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", socket)
				},
			},
		},
	}
}

// PutEndpoint registers an endpoint and returns once it is enforced.
func (c *Client) PutEndpoint(ctx context.Context, req EndpointRequest) (EndpointResponse, error) {
	var out EndpointResponse
	err := c.do(ctx, http.MethodPut, PathEndpoints+url.PathEscape(req.ContainerID), req, &out)
	return out, err
}

// DeleteEndpoint removes an endpoint; removing an unknown one is not an error.
func (c *Client) DeleteEndpoint(ctx context.Context, containerID string) error {
	return c.do(ctx, http.MethodDelete, PathEndpoints+url.PathEscape(containerID), nil, nil)
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.do(ctx, http.MethodGet, PathStatus, nil, &out)
	return out, err
}

// Flows returns the flows the agent read after sequence number since.
func (c *Client) Flows(ctx context.Context, since uint64) (Flows, error) {
	var out Flows
	err := c.do(ctx, http.MethodGet, PathFlows+"?since="+strconv.FormatUint(since, 10), nil, &out)
	return out, err
}

// Services returns the agent's load-balancing state.
func (c *Client) Services(ctx context.Context) (Services, error) {
	var out Services
	err := c.do(ctx, http.MethodGet, PathServices, nil, &out)
	return out, err
}

// Healthz reports whether the agent answers.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, PathHealthz, nil, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agent at %s: %w", c.socket, err)
	}
	defer func() {
		// Read to the end (the encoder's last newline): a connection
		// closed with unread data is reset, not kept for the next request.
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	if resp.StatusCode/100 != 2 {
		var e Error
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("agent at %s: %s %s: %s: %s", c.socket, method, path, resp.Status, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
