package render

import (
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"
)

// A text cell is well-formed XML holding the text as a reader gets it
// back: markup escaped, characters XML cannot hold replaced, edge white
// space kept, cut at Excel's 32,767 UTF-16 units without splitting a
// character; an empty text is no cell.
func TestAppendText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", excelize.TotalCellChars-1) + "😀" // the emoji would be units 32,767 and 32,768
	tests := []struct {
		name, in, want string
		preserve       bool
	}{
		{"plain", "hello", "hello", false},
		{"markup", `=HYPERLINK("http://evil") <b>&amp;</b> it's`, `=HYPERLINK("http://evil") <b>&amp;</b> it's`, false},
		{"control characters", "a\x00b\x1bc", "a\uFFFDb\uFFFDc", false},
		{"tab and newline", "a\tb\nc", "a\tb\nc", false},
		{"edge white space", "  spaced\n", "  spaced\n", true},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb", false},
		{"not XML characters", "a\uFFFEb\uFFFF", "a\uFFFDb\uFFFD", false},
		{"cut at a cell's length", long, strings.Repeat("é", excelize.TotalCellChars-1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := appendText(nil, 1, 7, 0, tc.in)
			var c struct {
				R    string `xml:"r,attr"`
				Type string `xml:"t,attr"`
				Text struct {
					Value string `xml:",chardata"`
					Space string `xml:"http://www.w3.org/XML/1998/namespace space,attr"`
				} `xml:"is>t"`
			}
			if err := xml.Unmarshal(b, &c); err != nil {
				t.Fatalf("not well-formed: %v\n%s", err, b)
			}
			if c.R != "B7" || c.Type != "inlineStr" {
				t.Errorf("cell %q of type %q", c.R, c.Type)
			}
			if diff := cmp.Diff(tc.want, c.Text.Value); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}
			if (c.Text.Space == "preserve") != tc.preserve {
				t.Errorf("xml:space %q", c.Text.Space)
			}
			if n := len(utf16.Encode([]rune(c.Text.Value))); n > excelize.TotalCellChars {
				t.Errorf("%d UTF-16 units", n)
			}
		})
	}
	if b := appendText([]byte("x"), 0, 1, 0, ""); string(b) != "x" {
		t.Errorf("an empty text wrote %q", b)
	}
}

// Any text a task can hold (titles and descriptions are the users') makes
// a well-formed cell that reads back as the text, with the characters XML
// cannot hold as U+FFFD, within a cell's length: the sheet can never be
// broken, or given markup, by what is written in it.
func FuzzAppendText(f *testing.F) {
	for _, s := range []string{"", "a", "<row>", "]]>", "&#0;", "\x00", " x ", "\xff\xfe", "é😀", `"'<>&`, "\t\r\n", "\uFFFE\uFFFF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendText([]byte("<row>"), 17, 1048576, 2, s)
		var r struct {
			Cells []struct {
				Text string `xml:"is>t"`
			} `xml:"c"`
		}
		if err := xml.Unmarshal(append(b, "</row>"...), &r); err != nil {
			t.Fatalf("%q: not well-formed: %v\n%s", s, err, b)
		}
		if s == "" {
			if len(r.Cells) != 0 {
				t.Fatalf("an empty text wrote %s", b)
			}
			return
		}
		if len(r.Cells) != 1 {
			t.Fatalf("%q: %d cells", s, len(r.Cells))
		}
		got := r.Cells[0].Text
		if n := len(utf16.Encode([]rune(got))); n > excelize.TotalCellChars {
			t.Fatalf("%q: %d UTF-16 units", s, n)
		}
		want := strings.Map(func(c rune) rune {
			if c == '\t' || c == '\n' || c == '\r' || c >= 0x20 && c <= 0xD7FF || c >= 0xE000 && c <= 0xFFFD || c >= 0x10000 && c <= 0x10FFFF {
				return c
			}
			return '\uFFFD'
		}, cutCell(s)) // each byte that is not UTF-8 is a U+FFFD, as strings.Map gives it
		if got != want && strings.ReplaceAll(want, "\r", "\n") != got {
			t.Fatalf("%q: reads back as %q, want %q", s, got, want)
		}
	})
}
