package report

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/task"
)

// WorkerConfig tunes building.
type WorkerConfig struct {
	// ChunkBytes is the size of the pieces content is stored in; the
	// worker holds one, a download one at a time.
	ChunkBytes int `envconfig:"REPORT_CHUNK_BYTES" default:"1048576"`
	// Lease is how long a claim lasts without progress before another
	// delivery may take the report over; each stored chunk renews it.
	Lease time.Duration `envconfig:"REPORT_LEASE" default:"2m"`
	// BuildTimeout bounds one build, and the statement timeout of its
	// queries.
	BuildTimeout time.Duration `envconfig:"REPORT_BUILD_TIMEOUT" default:"15m"`
	// MaxAttempts fails a report after this many claims, so one that
	// kills its worker (or always times out) does not come back forever.
	MaxAttempts int `envconfig:"REPORT_MAX_ATTEMPTS" default:"3"`
	// ExportMaxRows: an export selecting more tasks fails, with a reason
	// its requester reads, before any is written; the worker reads no
	// more than one row past it (DefaultExportMaxRows when < 1).
	ExportMaxRows int64 `envconfig:"REPORT_EXPORT_MAX_ROWS" default:"1000000"`
	// TempDir holds an xlsx export's rows while it is built (the
	// workbook is zipped at the end): a writable, disk-backed directory; empty
	// is the system's (TMPDIR, else /tmp). Each build uses a directory of
	// its own in it and removes it when done.
	TempDir string `envconfig:"REPORT_TEMP_DIR"`
	// TempMaxBytes bounds one build's temporary files (about 1 KB a
	// task): an xlsx export needing more fails, with a reason its
	// requester reads. DefaultTempMaxBytes when < 1; under 4 GiB so no
	// part of the workbook needs ZIP64.
	TempMaxBytes int64 `envconfig:"REPORT_TEMP_MAX_BYTES" default:"2147483648"`
	// Render draws xlsx and charts: render.Formats() in build-report and
	// the dev runner. Not a setting, code.
	Render Renderers `ignored:"true"`
}

// Renderers draw the formats whose libraries only build-report links
// (shared/report/render fills them), so the API functions, which link
// this package too, do without excelize and gonum/plot. A worker missing
// one answers the reports needing it with a retryable error: a
// build-report deployed without it, to be fixed and redelivered.
type Renderers struct {
	// Sheet starts an xlsx export into out, its temporary files under
	// tempDir, failing the report (CannotBuild) past maxTemp bytes of them.
	// fields are the export's custom field columns (task.Store.ExportFields),
	// after the built-in ones.
	Sheet func(out io.Writer, tempDir string, maxTemp int64, fields []field.Definition) (SheetWriter, error)
	// Figure draws the charts of summary s of report r, made at now, into
	// out as format (svg or png).
	Figure func(out io.Writer, format Format, r Report, s task.Summary, now time.Time) error
	// Analytics draws the charts of project analytics a of report r, made
	// at now, into out as format (svg or png).
	Analytics func(out io.Writer, format Format, r Report, a task.Analytics, now time.Time) error
}

// SheetWriter writes an export's tasks as a spreadsheet.
type SheetWriter interface {
	Encode(t *task.Task) error // t is reused for the next row: not kept
	Flush() error              // ends the sheet and writes the workbook
	Close() error              // removes the temporary files, whatever happened
}

// CannotBuild is the error of a report that can never be built as
// requested: the worker fails it with reason, which its requester reads.
func CannotBuild(reason string) error { return &badReportError{reason} }

// errNoRenderer: this worker was wired without the renderer a format needs.
var errNoRenderer = errors.New("report: this worker cannot draw the format (Renderers missing)")

// DefaultTempMaxBytes is 2 GiB: twice the sheet of a million tasks with
// every field set (about 1 KB of XML a task, measured), the export's cap.
const DefaultTempMaxBytes = 2 << 30

// DefaultExportMaxRows is the measured million of docs/reports.md: about
// 230 MiB of CSV, built in 7 s with a flat 33 MiB of memory, far inside
// the build timeout.
const DefaultExportMaxRows = 1_000_000

func (c WorkerConfig) validate() error {
	if c.ChunkBytes < 1<<10 || c.ChunkBytes > 64<<20 || c.Lease < time.Second || c.BuildTimeout < time.Second || c.MaxAttempts < 1 ||
		c.TempMaxBytes >= 4<<30 {
		return fmt.Errorf("report: invalid worker config %+v: chunks of 1 KiB to 64 MiB, lease and timeout of at least 1s, at least one attempt, temporary files under 4 GiB", c)
	}
	return nil
}

// ErrBusy: another worker is building the report; the event should come
// back later, when it is done (and then acknowledged) or the lease ran out.
var ErrBusy = errs.New(errs.Unavailable, "report: another worker is building this report",
	"another worker is building this report; redeliver later").After(30 * time.Second)

// Worker builds reports.
type Worker struct {
	store *Store
	tasks *task.Store
	cfg   WorkerConfig
	now   func() time.Time
}

// NewWorker returns a worker writing to store and reading tasks.
func NewWorker(store *Store, tasks *task.Store, cfg WorkerConfig) (*Worker, error) {
	if store == nil || tasks == nil {
		return nil, errors.New("report: NewWorker needs both stores")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.ExportMaxRows < 1 {
		cfg.ExportMaxRows = DefaultExportMaxRows
	}
	if cfg.TempMaxBytes < 1 {
		cfg.TempMaxBytes = DefaultTempMaxBytes
	}
	return &Worker{store: store, tasks: tasks, cfg: cfg, now: time.Now}, nil
}

// Build builds report id once: it returns nil when the report is finished
// (by this call, or before), ErrNotFound for an unknown report, ErrBusy
// while another worker holds it, and any other error when a retry may
// succeed (the report is then released for the next delivery).
func (w *Worker) Build(ctx context.Context, id uuid.UUID) error {
	r, claim, err := w.store.Claim(ctx, id, w.cfg.Lease, w.cfg.MaxAttempts)
	if err != nil {
		return err
	}
	switch claim {
	case Finished:
		return nil
	case Busy:
		return ErrBusy
	}
	log := zerolog.Ctx(ctx).With().Str("report.id", id.String()).Int("attempt", r.Attempt).Logger()
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, w.cfg.BuildTimeout)
	defer cancel()
	out := &chunkWriter{ctx: bctx, store: w.store, r: r, buf: make([]byte, 0, w.cfg.ChunkBytes), lease: w.cfg.Lease}
	rows, err := w.write(bctx, r, out)
	if err == nil {
		err = out.close()
	}
	if err == nil {
		_, err = w.store.Succeed(ctx, r, rows, out.bytes, out.seq)
	}
	var bad *badReportError
	switch {
	case err == nil:
		log.Info().Int64("rows", rows).Int64("bytes", out.bytes).Dur("took", time.Since(start)).Msg("report built")
		return nil
	case errors.Is(err, ErrLeaseLost):
		log.Warn().Msg("report taken over by another worker")
		return ErrBusy
	case errors.As(err, &bad):
		log.Warn().Err(err).Msg("report cannot be built")
		if _, err := w.store.Fail(ctx, r, bad.reason); err != nil && !errors.Is(err, ErrLeaseLost) {
			return err
		}
		return nil
	}
	// Retryable: let the next delivery claim it at once.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if rerr := w.store.Release(rctx, id, r.Attempt); rerr != nil {
		log.Warn().Err(rerr).Msg("report not released; its lease will run out")
	}
	return err
}

// badReportError is a report that can never be built as requested.
type badReportError struct{ reason string }

func (e *badReportError) Error() string { return "report: " + e.reason }

// write encodes r's content into out and returns how many rows it wrote.
func (w *Worker) write(ctx context.Context, r Report, out *chunkWriter) (int64, error) {
	q := r.Request.Filters.query(r.Scope)
	opts := task.ExportOptions{Timeout: w.cfg.BuildTimeout}
	switch r.Request.Kind {
	case KindStatusSummary:
		if r.Request.Period == nil {
			return 0, &badReportError{"a status summary needs a period"}
		}
		from, to, err := r.Request.Period.Bounds()
		if err != nil {
			return 0, &badReportError{"its period is not valid"}
		}
		now := w.now().UTC()
		chart := r.Request.Format == FormatSVG || r.Request.Format == FormatPNG
		if chart && w.cfg.Render.Figure == nil {
			return 0, errNoRenderer
		}
		opts.StatusPerDay = chart
		sum, err := w.tasks.Summarize(ctx, q, from, to, now, opts)
		if err != nil {
			return 0, err
		}
		err = drawOrEncode(out, chart, func() error { return w.cfg.Render.Figure(out, r.Request.Format, r, sum, now) },
			func() any { return summaryDocument(r, sum, now) })
		if err != nil {
			return 0, err
		}
		out.rows = sum.Total
		return sum.Total, nil

	case KindProjectAnalytics:
		return w.writeAnalytics(ctx, r, q, opts, out)

	case KindTasksExport:
		// A column per custom field of the export's project(s).
		fields, err := w.tasks.ExportFields(ctx, q)
		if err != nil {
			return 0, err
		}
		var enc rowEncoder
		switch r.Request.Format {
		case FormatCSV:
			enc = newCSVEncoder(out, fields)
		case FormatJSONL:
			enc = newJSONLEncoder(out)
		case FormatXLSX:
			if w.cfg.Render.Sheet == nil {
				return 0, errNoRenderer
			}
			x, err := w.cfg.Render.Sheet(out, w.cfg.TempDir, w.cfg.TempMaxBytes, fields)
			if err != nil {
				return 0, err
			}
			defer func() {
				if err := x.Close(); err != nil {
					zerolog.Ctx(ctx).Warn().Err(err).Msg("report: temporary files not removed")
				}
			}()
			enc = sheetEncoder{x}
		default:
			return 0, &badReportError{fmt.Sprintf("format %q is not one of an export", r.Request.Format)}
		}
		// One row past the cap tells an export over it, counted in the
		// snapshot the rows come from: it fails before writing any.
		limit := w.cfg.ExportMaxRows
		tooMany := &badReportError{fmt.Sprintf("more than %d tasks match, the most one export may hold; narrow its filters", limit)}
		opts.Limit = limit + 1
		opts.Total = func(n int64) error {
			if n > limit {
				return tooMany
			}
			return w.store.SetTotal(ctx, r.ID, r.Attempt, n)
		}
		err = w.tasks.Export(ctx, q, opts, func(t *task.Task) error {
			// Not reached after that count; the cap holds without it.
			if out.rows == limit {
				return tooMany
			}
			if err := enc.encode(t); err != nil {
				return err
			}
			out.rows++
			return nil
		})
		if err != nil {
			return 0, err
		}
		return out.rows, enc.flush()
	}
	return 0, &badReportError{fmt.Sprintf("kind %q is unknown", r.Request.Kind)}
}

// drawOrEncode writes a computed report's content into out: its charts
// (draw) or, as indented JSON, its document (doc).
func drawOrEncode(out io.Writer, chart bool, draw func() error, doc func() any) error {
	if chart {
		return draw()
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(doc())
}

// chunkWriter stores what is written to it as chunks of the report, each
// with the progress so far; it holds at most one chunk.
type chunkWriter struct {
	ctx   context.Context
	store *Store
	r     Report
	buf   []byte
	lease time.Duration
	seq   int   // chunks stored
	bytes int64 // bytes stored
	rows  int64 // rows encoded so far
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), cap(c.buf)-len(c.buf))
		c.buf = append(c.buf, p[:take]...)
		p = p[take:]
		if len(c.buf) == cap(c.buf) {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	if err := c.store.AppendChunk(c.ctx, c.r.ID, c.r.Attempt, c.seq, c.buf, c.rows, c.lease); err != nil {
		return err
	}
	c.seq++
	c.bytes += int64(len(c.buf))
	c.buf = c.buf[:0]
	return nil
}

// close stores what is left.
func (c *chunkWriter) close() error { return c.flush() }

// rowEncoder writes tasks in one export format.
type rowEncoder interface {
	encode(t *task.Task) error
	flush() error
}

// sheetEncoder is a SheetWriter as a rowEncoder.
type sheetEncoder struct{ SheetWriter }

func (e sheetEncoder) encode(t *task.Task) error { return e.Encode(t) }
func (e sheetEncoder) flush() error              { return e.Flush() }

// CSVColumns returns the header of a CSV export (a copy).
func CSVColumns() []string { return slices.Clone(csvColumns) }

// csvColumns is the header of a CSV export. project came last, after the
// others, so spreadsheets that read columns by position keep working.
var csvColumns = []string{"id", "title", "description", "status", "priority", "due_at", "owner_id", "assignee_id", "labels", "created_at", "updated_at", "version", "project"}

type csvEncoder struct {
	w      *csv.Writer
	header bool
	fields []field.Definition // a column each, after csvColumns
	rec    []string
}

func newCSVEncoder(out io.Writer, fields []field.Definition) *csvEncoder {
	return &csvEncoder{w: csv.NewWriter(out), fields: fields, rec: make([]string, len(csvColumns)+len(fields))}
}

// writeHeader names the columns: the built-in ones, then each custom
// field's name.
func (e *csvEncoder) writeHeader() error {
	e.header = true
	head := CSVColumns()
	for _, d := range e.fields {
		head = append(head, cell(d.Name))
	}
	return e.w.Write(head)
}

func (e *csvEncoder) encode(t *task.Task) error {
	if !e.header {
		if err := e.writeHeader(); err != nil {
			return err
		}
	}
	for i, d := range e.fields {
		e.rec[len(csvColumns)+i] = cell(FieldText(d, FieldValue(t, d)))
	}
	labels, err := json.Marshal(nonNil(t.Labels))
	if err != nil {
		return err
	}
	e.rec[0] = t.ID.String()
	e.rec[1] = cell(t.Title)
	e.rec[2] = cell(t.Description)
	e.rec[3] = string(t.Status)
	e.rec[4] = string(t.Priority)
	e.rec[5] = timeCell(t.DueAt)
	e.rec[6] = cell(t.OwnerID)
	e.rec[7] = ""
	if t.AssigneeID != nil {
		e.rec[7] = cell(*t.AssigneeID)
	}
	e.rec[8] = cell(string(labels))
	e.rec[9] = t.CreatedAt.UTC().Format(time.RFC3339Nano)
	e.rec[10] = t.UpdatedAt.UTC().Format(time.RFC3339Nano)
	e.rec[11] = strconv.FormatInt(t.Version, 10)
	e.rec[12] = cell(t.Project)
	return e.w.Write(e.rec)
}

func (e *csvEncoder) flush() error {
	if !e.header { // an empty export still names its columns
		if err := e.writeHeader(); err != nil {
			return err
		}
	}
	e.w.Flush()
	return e.w.Error()
}

// FieldValue is t's value of the field d names (by name, whatever the
// case: an export of several projects has a column per name), nil for none.
func FieldValue(t *task.Task, d field.Definition) json.RawMessage {
	if v, ok := t.Fields[d.Name]; ok {
		return v
	}
	for n, v := range t.Fields {
		if strings.EqualFold(n, d.Name) {
			return v
		}
	}
	return nil
}

// FieldText is a value as a text cell shows it: strings as they are,
// numbers and booleans as JSON writes them, options by name (an option
// id d does not know, from another project's field of the same name, as
// its id), a multi_select's names joined by ", "; "" for none.
func FieldText(d field.Definition, v json.RawMessage) string {
	if v == nil {
		return ""
	}
	name := func(id string) string {
		for _, o := range d.Options {
			if o.ID == id {
				return o.Name
			}
		}
		return id
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if d.Type.HasOptions() {
			return name(s)
		}
		return s
	}
	var ids []string
	if json.Unmarshal(v, &ids) == nil {
		for i, id := range ids {
			ids[i] = name(id)
		}
		return strings.Join(ids, ", ")
	}
	return string(v)
}

// cell neutralises a value a spreadsheet would run as a formula (OWASP's
// CSV injection advice): a leading =, +, -, @, tab or carriage return gets
// a quote in front. Only user-written text can start so.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func timeCell(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

type jsonlEncoder struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func newJSONLEncoder(out io.Writer) *jsonlEncoder {
	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonlEncoder{w: w, enc: enc}
}

// encode writes t as the API shows it, one line (Encode ends it with \n).
func (e *jsonlEncoder) encode(t *task.Task) error {
	t.Labels = nonNil(t.Labels)
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	if t.DueAt != nil {
		d := t.DueAt.UTC()
		t.DueAt = &d
	}
	return e.enc.Encode(t)
}

func (e *jsonlEncoder) flush() error { return e.w.Flush() }

// summaryDoc is the content of a status summary.
type summaryDoc struct {
	Kind        Kind                                    `json:"kind"`
	GeneratedAt time.Time                               `json:"generated_at"`
	Scope       string                                  `json:"scope"` // "all" or "own"
	Period      Period                                  `json:"period"`
	Filters     Filters                                 `json:"filters"`
	Total       int64                                   `json:"total"`
	ByStatus    map[task.Status]int64                   `json:"by_status"`
	ByPriority  map[task.Priority]int64                 `json:"by_priority"`
	ByBoth      map[task.Status]map[task.Priority]int64 `json:"by_status_and_priority"`
	ByProject   map[string]map[task.Status]int64        `json:"by_project"`
	Overdue     int64                                   `json:"overdue"`
	PerDay      []dayDoc                                `json:"per_day"`
}

type dayDoc struct {
	Date      string `json:"date"`
	Created   int64  `json:"created"`
	Completed int64  `json:"completed"`
}

func summaryDocument(r Report, s task.Summary, now time.Time) summaryDoc {
	scope := "all"
	if r.Scope != nil {
		scope = "own"
	}
	d := summaryDoc{
		Kind: KindStatusSummary, GeneratedAt: now, Scope: scope, Period: *r.Request.Period, Filters: r.Request.Filters,
		Total: s.Total, ByStatus: s.ByStatus, ByPriority: s.ByPriority, ByBoth: s.ByStatusPriority, ByProject: s.ByProject, Overdue: s.Overdue,
		PerDay: make([]dayDoc, len(s.Days)),
	}
	for i, day := range s.Days {
		d.PerDay[i] = dayDoc{Date: day.Date.Format(time.DateOnly), Created: day.Created, Completed: day.Completed}
	}
	return d
}
