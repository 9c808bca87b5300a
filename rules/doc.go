// Package rules rewrites SCIM 2.0 attribute paths in request bodies, PATCH operations,
// filters and attribute lists, following per-resource-type mapping rules, so that an
// identity provider that sends favorite_color or preferences.favoriteColor still lands
// in favoriteColor.
//
// Every function is pure: it works on the given bytes or strings, does no I/O, never
// panics, and is safe for concurrent use on one compiled Set. Rewriting an output
// again changes nothing (idempotence), and outputs depend only on input and rules.
//
// # Paths
//
// Rule paths follow RFC 7644 attribute-path syntax and are parsed with
// github.com/scim2/filter-parser: an optional schema URN, an attribute, an optional
// value filter and an optional sub-attribute. A core-schema URN is the bare name.
// Names compare ASCII case-insensitively everywhere; a key found in another case is
// renamed to the rule's spelling (when two rules spell a shared name differently, the
// first spelling wins). Within one resource type no path may equal, contain or lie
// inside another (Compile rejects that), so the outcome never depends on rule order.
// A value-filtered target needs a sub-attribute and a filter its own eq comparisons
// satisfy, so a new element can be built; sub-attribute paths without a filter address
// single-valued complex attributes.
//
// Besides the nested form, keys may carry several steps at once, as Entra ID writes
// them: "name.givenName", "urn:…:enterprise:2.0:User:department",
// `emails[type eq "work"].value`. Such keys are understood wherever a rule path is looked
// up, and a From key of that form is renamed in place to the target's one-key form.
//
// # Resources (POST, PUT)
//
// Drop paths are removed first, then each rule runs: a present target is kept (a From
// alongside it is removed); otherwise the first present From moves to the target
// (fallback_used); otherwise a Default is set (default_used) or WarnIfMissing reports
// missing_attribute. "Present" follows RFC 7643 §2.5: null and [] count as absent, so a
// null target is filled in place and null From keys are removed. The value keeps its
// place when the From key sits where the target's key belongs (a plain rename);
// otherwise the target is written in nested form, creating what is missing, appending a
// filter-built element when none matches, and adding an extension URN to an existing
// schemas array. Removing a From (or Drop) also removes the objects, elements
// (left with only their filter attributes) and arrays it leaves empty. A value of
// another kind in the way (name is a string, but the target is name.givenName) leaves
// the From alone with an unparseable warning. On a PUT, only-on-create targets and
// their From paths are removed (dropped).
//
// # PATCH
//
// An operation whose path is at or below a Drop path, or an only-on-create target or
// From, is removed. A path at or below a From path is rebased onto the target
// (emails[type eq "other"].value → emails[type eq "work"].value; a filter or
// sub-attribute below a bare From attribute is kept). The value objects of path-less
// add/replace operations, and of add/replace operations on a parent of a rule path (an
// extension URN, "emails", "preferences"), are rewritten as partial resources: every
// key counts as present (null clears), no defaults, no warnings, no schemas changes.
// A value moved out of its operation's parent becomes an extra operation right after
// it; an operation whose value the rules emptied is removed. Operations on attributes
// no rule names (group members) are not parsed at all and pass byte for byte.
//
// # Filters and attribute lists
//
// Filters are rewritten on the parsed AST and re-serialised, with string literals kept
// as written and parentheses where precedence needs them. A comparison on a From path
// becomes one on the target; on a value-filtered target it becomes
// `emails[type eq "work" and value eq "x"]`. The comparison on a filtered sub-attribute
// Entra ID sends for lookups (`emails[type eq "work"].value eq "x"`), which RFC 7644
// filters do not allow, is understood when it is the whole filter. A filter that names
// no From attribute is returned without being parsed (the parser is slow), so only
// filters that could need a rewrite report parse errors; filters longer than 4 KiB or
// nested deeper than 32 parentheses are refused. Attribute lists map entries to the
// target without its filter (emails[type eq "work"].value → emails.value) and drop
// the duplicates that creates.
//
// # Output
//
// JSON is edited through a lazily parsed tree that re-emits untouched members byte for
// byte (whitespace included); a body nothing changed in is returned as the same slice,
// and one that cannot be parsed is returned unchanged with an error.
package rules
