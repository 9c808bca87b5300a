package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is the browser the review-page test drives (Debian's chromium package).
const chromiumPath = "/usr/bin/chromium"

// TestBrowserReviewPage records real preview traffic through Caddy, then drives headless
// Chromium through the review page: connections, requests (the user, group, errors-only and
// deprovisions-only filters, by form and by shared URL), a request's detail with its
// rewritten lines, users and groups, warnings down to a user's example request, a
// cross-site form refused, the admin endpoint, the mode switch and clearing the preview. A
// user named <script>alert(1)</script> shows as text and runs nothing. Full-page
// screenshots go to a directory under $TMPDIR (logged); with SCIM_SHADOW_SCREENSHOTS=dir,
// requests.png is also written there (the README's screenshot; a relative dir is taken
// from the repository root).
func TestBrowserReviewPage(t *testing.T) {
	skipWithoutChromium(t)
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

	// What an IdP sends, recorded in preview: a user named like a script, without
	// favoriteColor (a warning), a group push (one member out, one in), a push to a group
	// the backend does not have (an error), a deactivation, and a create the rules rewrite
	// (favorite_color → favoriteColor).
	const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":%s}`
	for _, w := range []struct{ method, path, body string }{
		{http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + scriptName + `","active":true}`},
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
	// Warnings are noted off the request path.
	eventually(t, "the script user's warning", func() string {
		status, m := c.review(t, http.MethodGet, "/connections/acme/warnings/users", nil)
		if status != http.StatusOK || len(m["users"].([]any)) != 1 {
			return fmt.Sprintf("%d %v", status, m)
		}
		return ""
	})

	docs := os.Getenv("SCIM_SHADOW_SCREENSHOTS")
	if docs != "" && !filepath.IsAbs(docs) {
		docs = filepath.Join("..", docs) // relative to the repository, not to integration/
	}
	b := startBrowser(t)
	ctx, run, shot, text, count, location := b.ctx, b.run, b.shot, b.text, b.count, b.location

	// A script that ran would open a dialog (alert): count them.
	var dialogs atomic.Int32
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})

	// follow clicks a link or button and waits for the page it leads to.
	follow := func(step, sel string) {
		t.Helper()
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(sel, chromedp.ByQuery)); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	// filter sets the requests page's filter form and submits it.
	filter := func(step, user, group string, errorsOnly, deprovisionsOnly bool) {
		t.Helper()
		run(step,
			// Attributes, not properties: each page is fresh, so they are the fields' values.
			chromedp.SetAttributeValue(`input[name=user]`, "value", user, chromedp.ByQuery),
			chromedp.SetAttributeValue(`input[name=group]`, "value", group, chromedp.ByQuery),
			setChecked(`#f-errors`, errorsOnly),
			setChecked(`#f-deprovisions`, deprovisionsOnly))
		follow(step, `#f-apply`)
	}
	base := c.URL + "/review/ui/connections/acme/"

	// Connections: /ui/ redirects to the list.
	run("connections",
		chromedp.Navigate(c.URL+"/review/ui/"),
		chromedp.WaitVisible(`table.connections`, chromedp.ByQuery),
		shot("connections"))
	if loc := location(); !strings.HasSuffix(loc, "/review/ui/connections") {
		t.Errorf("/ui/ led to %s", loc)
	}
	if s := text(`#conn-acme`); !strings.Contains(s, "preview") || !strings.Contains(s, "5") || !strings.Contains(s, "1 open") {
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
	if n := count(`article.request`); n != 5 {
		t.Errorf("%d requests shown, want 5", n)
	}
	if s := text(`ol.requests`); !strings.Contains(s, "grace@example.com") || !strings.Contains(s, "linus@example.com") ||
		!strings.Contains(s, "removed") || !strings.Contains(s, "added") {
		t.Errorf("the group push's member changes are not shown:\n%s", s)
	}
	if count(`li.chg.add`) == 0 || count(`li.chg.remove`) == 0 {
		t.Errorf("no added or no removed change rows")
	}
	// The user named like a script is text, and nothing ran.
	if s := text(`ol.requests > li:last-child .key`); s != scriptName {
		t.Errorf("the oldest request's key reads %q, want %q", s, scriptName)
	}
	if n := count(`script`); n != 0 {
		t.Errorf("%d script elements in the page", n)
	}

	// Filters: a GET form, so the URL carries them.
	for _, f := range []struct {
		step, user, group    string
		errors, deprovisions bool
		param                string
		want                 []string // keys or ids shown, in any order
	}{
		{"errors only", "", "", true, false, "errors=1", []string{"0000-misspelled"}},
		{"deprovisions only", "", "", false, true, "deprovisions=1", []string{"Engineering", "ada@example.com"}},
		{"a user", "linus@example.com", "", false, false, "user=linus%40example.com", []string{"Engineering"}},
		{"a group", "", "Engineering", false, false, "group=Engineering", []string{"Engineering"}},
	} {
		filter(f.step, f.user, f.group, f.errors, f.deprovisions)
		shot("requests-" + strings.ReplaceAll(f.step, " ", "-"))
		if loc := location(); !strings.Contains(loc, f.param) {
			t.Errorf("%s: URL %s lacks %s", f.step, loc, f.param)
		}
		if n := count(`article.request`); n != len(f.want) {
			t.Errorf("%s: %d requests shown, want %d", f.step, n, len(f.want))
		}
		s := text(`main`)
		for _, w := range f.want {
			if !strings.Contains(s, w) {
				t.Errorf("%s: %q not shown:\n%s", f.step, w, s)
			}
		}
	}
	// The errors-only view, by its shared URL: the error is highlighted.
	run("errors view by URL",
		chromedp.Navigate(base+"requests?errors=1"),
		chromedp.WaitVisible(`input#f-errors[checked]`, chromedp.ByQuery))
	if n := count(`article.request.has-errors`); n != 1 {
		t.Errorf("%d highlighted errors, want 1", n)
	}
	if s := text(`ol.requests`); !strings.Contains(s, "not_found") {
		t.Errorf("errors-only list:\n%s", s)
	}

	// A request's detail: the error's, then the rewritten create's.
	run("detail",
		chromedp.Click(`article.request a.detail`, chromedp.ByQuery),
		chromedp.WaitVisible(`dl.facts`, chromedp.ByQuery),
		shot("request-error"))
	if s := text(`main`); !strings.Contains(s, "Original request") || !strings.Contains(s, "Effective request") ||
		!strings.Contains(s, "not_found") || !strings.Contains(s, "Attempts") {
		t.Errorf("detail page:\n%s", s)
	}
	run("rewritten create",
		chromedp.Navigate(base+"requests?user=barbara%40example.com"),
		chromedp.WaitVisible(`article.request`, chromedp.ByQuery),
		chromedp.Click(`article.request a.detail`, chromedp.ByQuery),
		chromedp.WaitVisible(`section.rewrites`, chromedp.ByQuery),
		shot("request"))
	if s := text(`section.rewrites`); !strings.Contains(s, "only in the original: favorite_color") ||
		!strings.Contains(s, "only in the effective request: favoriteColor") {
		t.Errorf("rewrites:\n%s", s)
	}
	var marked []string
	run("marked lines", chromedp.Evaluate(`Array.from(document.querySelectorAll('pre.body .ln.rewritten')).map(e => e.textContent)`, &marked))
	if got := strings.Join(marked, "\n"); !strings.Contains(got, `≠  "favorite_color": "teal"`) || !strings.Contains(got, `≠  "favoriteColor": "teal"`) {
		t.Errorf("marked lines:\n%s", got)
	}

	// Users and groups.
	run("resources",
		chromedp.Click(`header.top nav a[href$="resources"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`article.resource`, chromedp.ByQuery),
		shot("resources"))
	if s := text(`ol.requests`); !strings.Contains(s, "Engineering") || !strings.Contains(s, "ada@example.com") ||
		!strings.Contains(s, scriptName) {
		t.Errorf("resources page:\n%s", s)
	}

	// Warnings: per attribute, the users missing it, one user's example request.
	run("warnings",
		chromedp.Click(`header.top nav a[href$="warnings"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`table.warning-attrs`, chromedp.ByQuery),
		shot("warnings"))
	if s := text(`table.warning-attrs`); !strings.Contains(s, "favoriteColor") || !strings.Contains(s, "favorite_color × 1") {
		t.Errorf("warnings per attribute:\n%s", s)
	}
	follow("users missing favoriteColor", `a.users-link`)
	if loc := location(); !strings.Contains(loc, "attribute=favoriteColor") {
		t.Errorf("users link led to %s", loc)
	}
	if s := text(`table.warning-users a.key`); s != scriptName {
		t.Errorf("user with warnings reads %q", s)
	}
	run("user's warnings",
		chromedp.Click(`table.warning-users a.key`, chromedp.ByQuery),
		chromedp.WaitVisible(`article.user-warning`, chromedp.ByQuery),
		shot("user-warnings"))
	if s := text(`main`); !strings.Contains(s, "favoriteColor") || !strings.Contains(s, "Example request") ||
		!strings.Contains(s, `"userName": "`+scriptName+`"`) {
		t.Errorf("user's warnings page:\n%s", s)
	}
	if n := count(`script`); n != 0 || dialogs.Load() != 0 {
		t.Errorf("%d script elements, %d dialogs", n, dialogs.Load())
	}

	// A form on another site posting to the page is refused by the browser's own request
	// (Origin and Sec-Fetch-Site tell the handler), and changes nothing.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%sclear"><input type="hidden" name="token" value="guess">`+
			`<button id="go">Win a prize</button></form>`, base)
	}))
	defer evil.Close()
	run("cross-site form",
		chromedp.Navigate(evil.URL),
		chromedp.Click(`#go`, chromedp.ByQuery),
		chromedp.WaitVisible(`section.error-page`, chromedp.ByQuery),
		shot("cross-site-refused"))
	if s := text(`section.error-page`); !strings.Contains(s, "403") || !strings.Contains(s, "Refused") {
		t.Errorf("cross-site POST answered:\n%s", s)
	}
	if status, m := c.review(t, http.MethodGet, "/connections/acme/records", nil); status != http.StatusOK || len(m["records"].([]any)) != 5 {
		t.Errorf("after the cross-site POST the API says %d %v", status, m)
	}

	// The same page on Caddy's admin endpoint. Caddy's admin API refuses browsers (a request
	// with Sec-Fetch-Mode needs an allowed Origin, and a navigation has none), so this is
	// checked with a plain client.
	status, out, h := doH(t, http.MethodGet, c.AdminURL+"/scim_shadow/ui/connections", nil, map[string]string{})
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(out), `id="conn-acme"`) {
		t.Errorf("the page on the admin endpoint: %d %q\n%s", status, h.Get("Content-Type"), out)
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

// skipWithoutChromium skips a browser test on a machine without chromiumPath.
func skipWithoutChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test skipped: %s not found (apt-get install chromium)", chromiumPath)
	}
}

// browser is a headless Chromium for one test, with its screenshots' directory.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string // full-page screenshots, under $TMPDIR (logged)
}

// startBrowser starts Chromium; it stops with the test, or after two minutes.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	artifacts, err := os.MkdirTemp("", "scim-shadow-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", artifacts)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf),
		// This chromium is newer than cdproto: ignore the events cdproto cannot decode.
		chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(cancelCtx)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel)
	return &browser{t: t, ctx: ctx, artifacts: artifacts}
}

// run runs the actions of one step; a failure ends the test.
func (b *browser) run(step string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

// shot saves a full-page screenshot as name.png in the artifacts and in the directories
// also names ("" is skipped).
func (b *browser) shot(name string, also ...string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var png []byte
		if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
			return err
		}
		for _, dir := range append([]string{b.artifacts}, also...) {
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

// text is the text of the first element sel matches.
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run("reading "+sel, chromedp.TextContent(sel, &s, chromedp.ByQuery))
	return s
}

// count is how many elements sel matches.
func (b *browser) count(sel string) int {
	b.t.Helper()
	var nodes []*cdp.Node
	b.run("counting "+sel, chromedp.Nodes(sel, &nodes, chromedp.ByQueryAll, chromedp.AtLeast(0)))
	return len(nodes)
}

// location is the page's URL.
func (b *browser) location() string {
	b.t.Helper()
	var loc string
	b.run("reading the location", chromedp.Location(&loc))
	return loc
}

// scriptName is a userName an attacker could choose: the page must show it as text.
const scriptName = `<script>alert(1)</script>`

// setChecked sets a checkbox.
func setChecked(sel string, checked bool) chromedp.Action {
	if checked {
		return chromedp.SetAttributeValue(sel, "checked", "", chromedp.ByQuery)
	}
	return chromedp.RemoveAttribute(sel, "checked", chromedp.ByQuery)
}
