package shadow

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// maxLiveState bounds a live-state response kept in memory.
const maxLiveState = 4 << 20

// fetch sends a GET for path (and raw query) through next — the same way to the backend the
// request itself would take, with the same credentials — and returns the status and body.
// The request r is not changed: a clone with its own body and header map is sent, and the
// answer goes to a writer of our own, never to the client.
func fetch(ctx context.Context, r *http.Request, next http.Handler, path, rawQuery string) (int, []byte, error) {
	req := r.Clone(ctx)
	req.Method = http.MethodGet
	req.URL = &url.URL{Path: path, RawQuery: rawQuery}
	req.RequestURI = req.URL.RequestURI()
	req.Body = http.NoBody
	req.GetBody = nil
	req.ContentLength = 0
	req.TransferEncoding = nil
	for _, h := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Accept-Encoding", "If-Match", "If-None-Match", "Expect"} {
		req.Header.Del(h)
	}
	req.Header.Set("Accept", ContentType)
	req.Header.Set("Accept-Encoding", identity) // not dropped: see Engine.reverseWriter
	bw := &bufferWriter{header: http.Header{}}
	next.ServeHTTP(bw, req)
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	if bw.overflow {
		return bw.status, nil, fmt.Errorf("live state of %s exceeds %d bytes", path, maxLiveState)
	}
	return bw.status, bw.body.Bytes(), nil
}

// bufferWriter is an http.ResponseWriter that keeps the response in memory.
type bufferWriter struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

func (w *bufferWriter) Header() http.Header { return w.header }

func (w *bufferWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len()+len(p) > maxLiveState {
		w.overflow = true
		return len(p), nil
	}
	return w.body.Write(p)
}
