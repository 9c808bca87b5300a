package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// chromiumPath is the browser the review-page test drives (Debian's chromium package).
const chromiumPath = "/usr/bin/chromium"

// TestBrowserReviewPage records real preview traffic through Caddy, then drives headless
// Chromium through the review page: connections, requests, the errors-only filter, a
// request's detail, users and groups, the mode switch and clearing the preview. Full-page
// screenshots go to a directory under $TMPDIR (logged); with SCIM_SHADOW_SCREENSHOTS=dir,
// requests.png is also written there (the README's screenshot).
func TestBrowserReviewPage(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test skipped: %s not found (apt-get install chromium)", chromiumPath)
	}
	be := startBackend(t)
	c := startPreview(t, "store sqlite {{DB}}", be)

	// The backend has three users and a group (seeded directly, bypassing Caddy).
	id := func(path, body string) string {
		status, out := do(t, http.MethodPost, be.URL+"/scim/v2"+path, body, map[string]string{
			"Authorization": "Bearer " + backendToken, "Content-Type": "application/scim+json"})
		if status != http.StatusCreated {
			t.Fatalf("seeding %s: %d %s", path, status, out)
		}
		return decode(t, out)["id"].(string)
	}
	ada := id("/Users", `{"userName":"ada@example.com","active":true}`)
	grace := id("/Users", `{"userName":"grace@example.com"}`)
	linus := id("/Users", `{"userName":"linus@example.com"}`)
	group := id("/Groups", fmt.Sprintf(`{"displayName":"Engineering","members":[{"value":%q},{"value":%q}]}`, ada, grace))

	// What an IdP sends, recorded in preview: a group push (one member out, one in), a push
	// to a group the backend does not have (an error), a deactivation, a create.
	const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":%s}`
	for _, w := range []struct{ method, path, body string }{
		{http.MethodPatch, "/Groups/" + group, fmt.Sprintf(patchOp, fmt.Sprintf(`[{"op":"replace","value":{"id":%q,"displayName":"Engineering"}},
			{"op":"remove","path":"members[value eq \"%s\"]"},{"op":"add","path":"members","value":[{"value":%q,"display":"linus@example.com"}]}]`,
			group, grace, linus))},
		{http.MethodPatch, "/Groups/0000-misspelled", fmt.Sprintf(patchOp, fmt.Sprintf(`[{"op":"add","path":"members","value":[{"value":%q}]}]`, ada))},
		{http.MethodPatch, "/Users/" + ada, fmt.Sprintf(patchOp, `[{"op":"replace","value":{"active":false}}]`)},
		{http.MethodPost, "/Users", strings.NewReplacer("ada@", "barbara@", "Ada", "Barbara", "Lovelace", "Liskov", "00u1", "00u2").Replace(oktaCreate)},
	} {
		if status, out, _ := c.scim(t, w.method, w.path, w.body); status != http.StatusTooManyRequests {
			t.Fatalf("%s %s: %d %s", w.method, w.path, status, out)
		}
	}

	artifacts, err := os.MkdirTemp("", "scim-shadow-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", artifacts)
	docs := os.Getenv("SCIM_SHADOW_SCREENSHOTS")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf),
		// This chromium is newer than cdproto: ignore the events cdproto cannot decode.
		chromedp.WithErrorf(func(string, ...any) {}))
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	run := func(step string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	shot := func(name string, also ...string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			var png []byte
			if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
				return err
			}
			for _, dir := range append([]string{artifacts}, also...) {
				if dir == "" {
					continue
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
					return err
				}
			}
			return nil
		})
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run("reading "+sel, chromedp.TextContent(sel, &s, chromedp.ByQuery))
		return s
	}
	count := func(sel string) int {
		t.Helper()
		var nodes []*cdp.Node
		run("counting "+sel, chromedp.Nodes(sel, &nodes, chromedp.ByQueryAll, chromedp.AtLeast(0)))
		return len(nodes)
	}

	// Connections: /ui/ redirects to the list.
	var loc string
	run("connections",
		chromedp.Navigate(c.URL+"/review/ui/"),
		chromedp.WaitVisible(`table.connections`, chromedp.ByQuery),
		chromedp.Location(&loc),
		shot("connections"))
	if !strings.HasSuffix(loc, "/review/ui/connections") {
		t.Errorf("/ui/ led to %s", loc)
	}
	if s := text(`#conn-acme`); !strings.Contains(s, "preview") || !strings.Contains(s, "4") {
		t.Errorf("connection row: %q", s)
	}

	// Requests, newest first, at desktop and phone width.
	run("requests",
		chromedp.Click(`#conn-acme a.requests-link`, chromedp.ByQuery),
		chromedp.WaitVisible(`ol.requests`, chromedp.ByQuery),
		shot("requests", docs),
		chromedp.EmulateViewport(375, 800),
		shot("requests-375px"),
		chromedp.EmulateViewport(1280, 900))
	if n := count(`article.request`); n != 4 {
		t.Errorf("%d requests shown, want 4", n)
	}
	if s := text(`ol.requests`); !strings.Contains(s, "grace@example.com") || !strings.Contains(s, "linus@example.com") ||
		!strings.Contains(s, "removed") || !strings.Contains(s, "added") {
		t.Errorf("the group push's member changes are not shown:\n%s", s)
	}

	// The errors-only filter is a GET form: the URL carries it.
	run("errors filter",
		chromedp.Click(`#f-errors`, chromedp.ByQuery),
		chromedp.Click(`#f-apply`, chromedp.ByQuery),
		chromedp.WaitVisible(`input#f-errors[checked]`, chromedp.ByQuery),
		chromedp.Location(&loc),
		shot("requests-errors"))
	if !strings.Contains(loc, "errors=1") {
		t.Errorf("filtered URL %s", loc)
	}
	if n := count(`article.request`); n != 1 {
		t.Errorf("%d requests shown with errors only, want 1", n)
	}
	if n := count(`article.request.has-errors`); n != 1 {
		t.Errorf("the error is not highlighted")
	}
	if s := text(`ol.requests`); !strings.Contains(s, "0000-misspelled") || !strings.Contains(s, "not_found") {
		t.Errorf("errors-only list:\n%s", s)
	}

	// The request's detail.
	run("detail",
		chromedp.Click(`article.request a.detail`, chromedp.ByQuery),
		chromedp.WaitVisible(`dl.facts`, chromedp.ByQuery),
		shot("request"))
	if s := text(`main`); !strings.Contains(s, "Original request") || !strings.Contains(s, "Effective request") ||
		!strings.Contains(s, "not_found") || !strings.Contains(s, "Attempts") {
		t.Errorf("detail page:\n%s", s)
	}

	// Users and groups.
	run("resources",
		chromedp.Click(`header.top nav a[href$="resources"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`article.resource`, chromedp.ByQuery),
		shot("resources"))
	if s := text(`ol.requests`); !strings.Contains(s, "Engineering") || !strings.Contains(s, "ada@example.com") {
		t.Errorf("resources page:\n%s", s)
	}

	// Switch to live, through the confirmation.
	run("mode confirmation",
		chromedp.Navigate(c.URL+"/review/ui/connections"),
		chromedp.WaitVisible(`table.connections`, chromedp.ByQuery),
		chromedp.Click(`#conn-acme button.switch-mode`, chromedp.ByQuery),
		chromedp.WaitVisible(`section.confirm`, chromedp.ByQuery),
		shot("confirm-mode"))
	if s := text(`section.confirm`); !strings.Contains(s, "the IdP's next retries will be applied to the backend") {
		t.Errorf("confirmation says:\n%s", s)
	}
	run("mode switch",
		chromedp.Click(`#confirm`, chromedp.ByQuery),
		chromedp.WaitVisible(`table.connections`, chromedp.ByQuery))
	if status, m := c.review(t, http.MethodGet, "/connections", nil); status != http.StatusOK ||
		m["connections"].([]any)[0].(map[string]any)["mode"] != "live" {
		t.Errorf("after the switch the API says %d %v", status, m)
	}
	if s := text(`#conn-acme`); !strings.Contains(s, "live") || !strings.Contains(s, "Switch to preview") {
		t.Errorf("connection row after the switch: %q", s)
	}

	// Clear the preview, through the confirmation.
	run("clear",
		chromedp.Click(`#conn-acme a.clear-link`, chromedp.ByQuery),
		chromedp.WaitVisible(`section.confirm`, chromedp.ByQuery),
		shot("confirm-clear"),
		chromedp.Click(`#confirm`, chromedp.ByQuery),
		chromedp.WaitVisible(`p.empty`, chromedp.ByQuery),
		shot("requests-cleared"))
	if status, m := c.review(t, http.MethodGet, "/connections/acme/records", nil); status != http.StatusOK || len(m["records"].([]any)) != 0 {
		t.Errorf("after clearing the API says %d %v", status, m)
	}
}
