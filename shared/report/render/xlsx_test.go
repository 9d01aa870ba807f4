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
