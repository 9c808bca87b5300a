#!/usr/bin/env python3
"""Writes the hostile-input corpus: one JSON file per case (see integration/hostile_test.go).

Expectations per mode: "pass" (the backend got it), "error" (a SCIM error from the proxy,
nothing forwarded), "recorded" (preview: 429 with a record id), "any" (pass or SCIM error),
"server" (refused by Caddy's HTTP server before any handler: 400), "unrouted" (the path does not
match the scim route: the site's catch-all answers 404). Writes in preview are
never forwarded, whatever the expectation says. Run: python3 gen.py (in this folder).
"""
import base64, json, os, glob

HERE = os.path.dirname(os.path.abspath(__file__))
PATCH = '"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]'
cases = []

def case(name, method, path, body=None, live="pass", preview=None, status=None, headers=None, **kw):
    if preview is None:
        preview = "pass" if method in ("GET", "HEAD", "OPTIONS") or path.endswith("/.search") else "recorded"
    c = {"name": name, "method": method, "path": path, "expect": {"live": live, "preview": preview}}
    if body is not None:
        c["body"] = body
    if status:
        c["status"] = status
    if headers:
        c["headers"] = headers
    c.update(kw)
    cases.append(c)

def user(extra):
    return '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"hostile@example.com"' + extra + '}'

def patch(ops):
    return '{' + PATCH + ',"Operations":' + ops + '}'

# Malformed JSON: live passes it through unchanged (invariant 7), preview records it.
case("malformed-missing-brace", "POST", "/Users", '{"userName":"a@example.com"')
case("malformed-trailing-comma", "POST", "/Users", '{"userName":"a@example.com",}')
case("malformed-single-quotes", "POST", "/Users", "{'userName':'a@example.com'}")
case("malformed-not-json", "POST", "/Users", "hello, world")
case("malformed-empty-body", "POST", "/Users", "")
case("malformed-null", "POST", "/Users", "null")
case("malformed-top-level-array", "POST", "/Users", '[{"userName":"a@example.com"}]')
case("malformed-truncated-string", "PUT", "/Users/u1", '{"userName":"abc')
case("malformed-patch-garbage", "PATCH", "/Users/u1", '{"Operations":[{"op":"replace",,]}')
case("malformed-bom", "POST", "/Users", "\ufeff" + user(""))
# Truncated bodies (raw): the client declares more than it sends, then stops sending.
case("truncated-content-length", "POST", "/Users", live="error", preview="error", status=400,
     raw=True, declared_length=400, body=user("")[:30])
case("truncated-chunked", "POST", "/Users", live="error", preview="error", status=400,
     raw=True, chunked_truncated=True, body=user(""))
case("truncated-patch", "PATCH", "/Users/u1", live="error", preview="error", status=400,
     raw=True, declared_length=200, body=patch('[{"op":"replace","path":"active","value":fal'))
# Wrong content types: live streams what it cannot parse untouched; preview records.
for n, ct in [("text-plain", "text/plain"), ("xml", "application/xml"), ("form", "application/x-www-form-urlencoded"),
              ("multipart", "multipart/form-data; boundary=x"), ("bad-params", "application/scim+json; charset"),
              ("garbage", "}{not a type")]:
    case("content-type-" + n, "POST", "/Users", user(""), headers={"Content-Type": ct})
case("content-type-json-ok", "POST", "/Users", user(""), headers={"Content-Type": "application/json"})
case("content-type-xml-body", "POST", "/Users", '<User><userName>x</userName></User>', headers={"Content-Type": "application/xml"})
# Huge bodies: 413 with a SCIM error in both modes.
case("huge-body-2mib", "POST", "/Users", live="error", preview="error", status=413,
     repeat={"prefix": user(',"junk":"'), "unit": "x", "times": 2 << 20, "suffix": '"}'})
case("huge-body-chunked", "POST", "/Users", live="error", preview="error", status=413, chunked=True,
     repeat={"prefix": user(',"junk":"'), "unit": "y", "times": 3 << 20, "suffix": '"}'})
case("huge-content-length-declared", "POST", "/Users", live="error", preview="error", status=413,
     raw=True, declared_length=10 << 30, body=user(""))
case("big-under-limit", "POST", "/Users",
     repeat={"prefix": user(',"nickName":"'), "unit": "z", "times": 900 << 10, "suffix": '"'})
# Deeply nested JSON: 400 over max_depth, whatever the nesting is made of.
case("deep-objects-65", "POST", "/Users", live="error", preview="error", status=400,
     repeat={"prefix": user(',"x":'), "unit": '{"a":', "times": 65, "middle": "1", "close": "}", "suffix": "}"})
case("deep-arrays-10k", "POST", "/Users", live="error", preview="error", status=400,
     repeat={"prefix": user(',"x":'), "unit": "[", "times": 10000, "close": "]", "suffix": "}"})
case("deep-arrays-1m-unclosed", "POST", "/Users", live="error", preview="error", status=400,
     repeat={"prefix": '{"x":', "unit": "[", "times": 1000000})
case("deep-patch-value", "PATCH", "/Users/u1", live="error", preview="error", status=400,
     repeat={"prefix": '{' + PATCH + ',"Operations":[{"op":"add","value":', "unit": '{"a":', "times": 200, "middle": "1", "close": "}", "suffix": "}]}"})
case("deep-search-filter", "POST", "/Users/.search", live="error", preview="error", status=400,
     repeat={"prefix": '{"filter":', "unit": "[", "times": 100, "close": "]", "suffix": "}"})
case("nested-under-limit", "POST", "/Users",
     repeat={"prefix": user(',"urn:example:ext":'), "unit": '{"a":', "times": 40, "middle": "1", "close": "}", "suffix": "}"})
case("brackets-in-strings", "POST", "/Users", user(',"nickName":"' + "[{" * 5000 + '"'))
# Huge arrays and operation counts.
case("huge-emails-array", "POST", "/Users",
     repeat={"prefix": user(',"emails":['), "unit": '{"value":"e@x.io","type":"work"}', "sep": ",", "times": 20000, "suffix": "]}"})
case("huge-members-add", "PATCH", "/Groups/g1",
     repeat={"prefix": '{' + PATCH + ',"Operations":[{"op":"add","path":"members","value":[', "unit": '{"value":"m"}', "sep": ",", "times": 20000, "suffix": "]}]}"})
case("operations-1001", "PATCH", "/Users/u1", live="error", preview="error", status=400,
     repeat={"prefix": '{' + PATCH + ',"Operations":[', "unit": '{"op":"replace","path":"active","value":true}', "sep": ",", "times": 1001, "suffix": "]}"})
case("operations-100k-empty", "PATCH", "/Users/u1", live="error", preview="error", status=400,
     repeat={"prefix": '{' + PATCH + ',"Operations":[', "unit": "{}", "sep": ",", "times": 100000, "suffix": "]}"})
case("operations-1000", "PATCH", "/Users/u1",
     repeat={"prefix": '{' + PATCH + ',"Operations":[', "unit": '{"op":"replace","path":"nickName","value":"n"}', "sep": ",", "times": 1000, "suffix": "]}"})
case("bulk-operations-1001", "POST", "/Bulk", live="error", preview="error", status=413,
     repeat={"prefix": '{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[', "unit": '{"method":"POST","path":"/Users","bulkId":"b","data":{"userName":"b"}}', "sep": ",", "times": 1001, "suffix": "]}"})
# Invalid UTF-8 and odd characters.
case("utf8-invalid-bytes", "POST", "/Users", live="any", body_b64=base64.b64encode(b'{"userName":"\xff\xfe@example.com"}').decode())
case("utf8-overlong", "POST", "/Users", live="any", body_b64=base64.b64encode(b'{"userName":"\xc0\xafetc@example.com"}').decode())
case("utf8-lone-surrogate", "POST", "/Users", user(',"nickName":"\\ud800"'))
case("utf8-nul-escape", "POST", "/Users", user(',"nickName":"a\\u0000b"'))
case("utf8-raw-nul", "POST", "/Users", live="any", body_b64=base64.b64encode(b'{"userName":"a\x00b@example.com"}').decode())
case("utf8-in-key", "PATCH", "/Users/u1", live="any", body_b64=base64.b64encode(b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"\xff\xff","value":1}]}').decode())
# Duplicate keys.
case("dup-username", "POST", "/Users", '{"userName":"a@example.com","userName":"b@example.com"}')
case("dup-username-case", "POST", "/Users", '{"userName":"a@example.com","USERNAME":"b@example.com"}')
case("dup-operations", "PATCH", "/Users/u1", '{' + PATCH + ',"Operations":[{"op":"replace","path":"active","value":true}],"Operations":[]}')
case("dup-password", "POST", "/Users", user(',"password":"one","Password":"two"'))
# Numbers and booleans as strings, numbers at the edges.
case("number-active-string", "POST", "/Users", user(',"active":"true"'))
case("number-entra-false", "PATCH", "/Users/u1", patch('[{"op":"Replace","path":"active","value":"False"}]'))
case("number-huge-exponent", "POST", "/Users", user(',"x":1e999999'))
case("number-huge-integer", "POST", "/Users", user(',"x":' + "9" * 5000))
case("number-negative-zero", "POST", "/Users", user(',"x":-0.0e-400'))
# PATCH with unknown ops and broken paths: live forwards (the backend judges), preview records
# with an invalid_patch finding.
case("patch-op-move", "PATCH", "/Users/u1", patch('[{"op":"move","path":"active","value":true}]'))
case("patch-op-empty", "PATCH", "/Users/u1", patch('[{"op":"","path":"active","value":true}]'))
case("patch-op-missing", "PATCH", "/Users/u1", patch('[{"path":"active","value":true}]'))
case("patch-op-number", "PATCH", "/Users/u1", patch('[{"op":7,"path":"active","value":true}]'))
case("patch-path-unbalanced", "PATCH", "/Users/u1", patch('[{"op":"replace","path":"emails[type eq \\"work\\"","value":"x"}]'))
case("patch-path-or-tautology", "PATCH", "/Groups/g1", patch('[{"op":"remove","path":"members[value eq \\"x\\" or 1 eq 1]"}]'))
case("patch-path-empty", "PATCH", "/Users/u1", patch('[{"op":"replace","path":"","value":"x"}]'))
case("patch-path-10k", "PATCH", "/Users/u1", patch('[{"op":"replace","path":"' + "a." * 5000 + 'b","value":"x"}]'))
case("patch-path-sql", "PATCH", "/Users/u1", patch('[{"op":"replace","path":"name\'; DROP TABLE records; --","value":"x"}]'))
case("patch-operations-object", "PATCH", "/Users/u1", '{' + PATCH + ',"Operations":{"op":"replace"}}')
case("patch-operations-null", "PATCH", "/Users/u1", '{' + PATCH + ',"Operations":null}')
case("patch-add-no-value", "PATCH", "/Users/u1", patch('[{"op":"add","path":"nickName"}]'))
case("patch-no-schemas", "PATCH", "/Users/u1", '{"Operations":[{"op":"replace","path":"active","value":false}]}')
case("patch-value-array-of-garbage", "PATCH", "/Groups/g1", patch('[{"op":"add","path":"members","value":[1,null,"x",[],{}]}]'))
# Filters with injection attempts: reads, passed through in both modes.
for n, f in [("sql-or", "userName eq \"a' OR '1'='1\""), ("sql-drop", 'userName eq "x"; DROP TABLE records; --'),
             ("quote-escape", 'userName eq "a\\" or \\"1\\"=\\"1"'), ("unbalanced", '((userName eq "a"'),
             ("long", 'userName eq "' + "a" * 10000 + '"'), ("nul", 'userName eq "a\x00"'),
             ("unknown-op", 'userName xx "a" or 1=1')]:
    case("filter-" + n, "GET", "/Users?filter=" + f, live="pass", preview="pass", encode_query=True)
case("search-injection", "POST", "/Users/.search", '{"filter":"userName eq \\"a\' OR 1=1 --\\"","attributes":["userName\'--"]}')
case("attributes-weird", "GET", "/Users?attributes=userName,\"';--,name.givenName&excludedAttributes=%00", live="pass", preview="pass")
# Path traversal and odd resource ids.
# Caddy matches routes on the cleaned, unescaped path: ids that climb out of /scim/v2/ do
# not match the scim route at all and meet the site's catch-all (404), never the backend.
case("id-traversal-encoded", "PATCH", "/Users/..%2f..%2fadmin", patch('[{"op":"replace","path":"active","value":false}]'), live="unrouted", preview="unrouted")
case("id-traversal-dots", "DELETE", "/Users/%2e%2e/%2e%2e/Groups/g1", live="unrouted", preview="unrouted")
case("id-traversal-within", "DELETE", "/Users/u1/..%2f..%2fGroups/g1", live="any")
case("id-nul", "PUT", "/Users/%00", user(""), live="any")
case("id-5000", "DELETE", "/Users/" + "i" * 5000, live="any")
case("id-traversal-read", "GET", "/Users/..%2fGroups", live="pass", preview="pass")
case("id-sql", "DELETE", "/Users/1'%20OR%20'1'='1", live="any")
# Connection names from a header placeholder (X-Tenant): control characters are removed,
# names are cut, a placeholder inside the value is not expanded.
case("tenant-obs-fold-raw", "POST", "/Users", user(""), raw=True,
     raw_headers="X-Tenant: acme\r\n X-Injected: 1\r\n")
case("tenant-nul-raw", "POST", "/Users", user(""), live="server", preview="server", raw=True, raw_headers="X-Tenant: ac\x00me\r\n")
case("tenant-del-raw", "POST", "/Users", user(""), live="server", preview="server", raw=True, raw_headers="X-Tenant: ac\tme\x7f\r\n")
case("tenant-crlf-in-value-raw", "POST", "/Users", user(""), live="server", preview="server", raw=True, raw_headers="X-Tenant: a\rX-Injected: 1\r\n")
case("tenant-long", "POST", "/Users", user(""), headers={"X-Tenant": "t" * 5000})
case("tenant-placeholder", "POST", "/Users", user(""), headers={"X-Tenant": "{http.request.header.Authorization}"})
case("tenant-html", "POST", "/Users", user(""), headers={"X-Tenant": "<script>alert(1)</script>\"'"})
case("tenant-traversal", "POST", "/Users", user(""), headers={"X-Tenant": "../../review/connections"})
case("tenant-utf8-invalid", "POST", "/Users", user(""), raw=True, raw_headers="X-Tenant: ok\xff\xfe\r\n")
# Methods and bulk oddities.
case("method-propfind", "PROPFIND", "/Users/u1", "<x/>", headers={"Content-Type": "application/xml"})
case("method-options", "OPTIONS", "/Users", live="pass", preview="pass")
case("bulk-nested-bulk", "POST", "/Bulk", '{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"POST","path":"/Bulk","data":{"Operations":[]}}]}')
case("bulk-traversal", "POST", "/Bulk", '{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"DELETE","path":"/Users/../../Groups/g1"}]}')
case("bulk-data-not-object", "POST", "/Bulk", '{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"POST","path":"/Users","data":"x"}]}')

for f in glob.glob(os.path.join(HERE, "*.json")):
    os.remove(f)
for i, c in enumerate(cases):
    with open(os.path.join(HERE, "%03d-%s.json" % (i + 1, c["name"])), "w") as fh:
        json.dump(c, fh, indent=1, ensure_ascii=True)
        fh.write("\n")
print(len(cases), "cases")
