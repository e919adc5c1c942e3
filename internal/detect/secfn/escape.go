package secfn

import (
	"path"
	"strings"
)

// EscapesRoot reports whether s — a path, a URI or a text of
// whitespace-separated words such as a command line — holds a path whose
// ".." segments leave its root once the path is normalised, in POSIX or
// Windows form and after decoding (percent, double percent, %uXXXX,
// overlong UTF-8, fullwidth; backslashes are separators):
//
//   - a relative path escapes when path.Clean leaves a leading "..":
//     "../../etc/passwd", "src/../../x"; "a/b/../c" and "./x/../y" stay
//     inside the directory they are relative to;
//   - an absolute path (also C:\…, ~/…, file://…) escapes when its ".."
//     segments climb back to the root — the directory it names first is
//     the one it meant to stay in: "/srv/app/../../etc/passwd",
//     "C:\inetpub\..\Windows\win.ini"; "/srv/app/sub/../x" stays below
//     /srv/app;
//   - a UNC path (\\server\share\…) or a URL's path escapes when it climbs
//     above its share or authority: "\\fs\share\..\admin$",
//     "https://h/a/../../etc/passwd"; "https://h/a/../b" stays on h.
//
// A ".." inside a name ("v1..v2", "main...dev", "./...") is no segment.
func EscapesRoot(s string) bool {
	if !strings.Contains(s, "..") && strings.IndexByte(s, '%') < 0 && isASCII(s) {
		return false
	}
	d := urlDecode(foldWidth(s))
	if !strings.Contains(d, "..") {
		return false
	}
	if strings.IndexByte(d, '\\') >= 0 {
		d = strings.ReplaceAll(d, `\`, "/")
	}
	d = strings.ReplaceAll(d, "\x00", "")
	for len(d) > 0 {
		i := strings.IndexAny(d, " \t\r\n\"'`=,;()<>|&[]{}")
		tok := d
		if i >= 0 {
			tok, d = d[:i], d[i+1:]
		} else {
			d = ""
		}
		if strings.Contains(tok, "..") && pathEscapes(tok) {
			return true
		}
	}
	return false
}

// pathEscapes applies EscapesRoot's rules to one slash-separated token.
func pathEscapes(t string) bool {
	abs := false
	floor := 0 // an absolute path escapes at depth ≤ floor
	switch {
	case strings.Contains(t, "://"):
		// scheme://authority/path: the authority is the root, except for
		// file URIs, whose path is a file system path.
		i := strings.Index(t, "://")
		rest := t[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return false
		}
		if !strings.EqualFold(t[max(0, i-4):i], "file") {
			floor = -1
		}
		t, abs = rest[j:], true
	case strings.HasPrefix(t, "//"):
		// UNC \\server\share\path: the share is the root.
		rest := strings.SplitN(t[2:], "/", 3)
		if len(rest) < 3 {
			return false
		}
		t, abs, floor = "/"+rest[2], true, -1
	case len(t) >= 2 && t[1] == ':' && isASCIILetter(t[0]):
		// C:/x is absolute on drive C; C:x is relative to C's directory.
		t = t[2:]
		abs = strings.HasPrefix(t, "/")
	case t == "~" || strings.HasPrefix(t, "~/"):
		t, abs = t[1:], true
	default:
		// key:path (a git ref, a prefix); a colon after the first slash
		// belongs to the path.
		if i := strings.IndexByte(t, ':'); i >= 0 && (strings.IndexByte(t, '/') < 0 || i < strings.IndexByte(t, '/')) {
			t = t[i+1:]
		}
		abs = strings.HasPrefix(t, "/")
	}
	if !abs {
		c := path.Clean(t)
		return c == ".." || strings.HasPrefix(c, "../")
	}
	// Absolute: escapes when a ".." brings it down to floor.
	depth := 0
	for _, seg := range strings.Split(t, "/") {
		switch seg {
		case "", ".":
		case "..":
			if depth--; depth <= floor {
				return true
			}
		default:
			depth++
		}
	}
	return false
}
