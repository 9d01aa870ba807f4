package eventstest

import (
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
)

// Binary is a POST of a CloudEvent of type typ in binary mode, as a
// KafkaSource delivers one: the attributes in Ce- headers, data as the
// body with contentType ("" sends none).
func Binary(typ, contentType, data string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(data))
	r.Header.Set("Ce-Specversion", "1.0")
	r.Header.Set("Ce-Id", uuid.NewString())
	r.Header.Set("Ce-Source", "/taskfn/test")
	r.Header.Set("Ce-Type", typ)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// Structured is a POST of doc, a CloudEvent in structured mode
// (application/cloudevents+json), whatever doc holds.
func Structured(doc string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(doc))
	r.Header.Set("Content-Type", "application/cloudevents+json")
	return r
}

// StructuredHead is the start of a structured CloudEvent of type typ,
// open for more members: StructuredHead(typ) + `"data":{}}` is complete.
func StructuredHead(typ string) string {
	return `{"specversion":"1.0","id":"` + uuid.NewString() + `","source":"/taskfn/test","type":"` + typ + `",`
}

// Adversarial are requests built to multiply what a sink of events of
// type typ, reading at most size bytes, does or answers (issue #21), each
// with the status it must get whatever the sink: refused before the sink
// sees an event, or by any sink as an event it can never process.
func Adversarial(typ string, size int) []httpxtest.Case {
	head := StructuredHead(typ)
	binary := func(data string) func() *http.Request {
		return func() *http.Request { return Binary(typ, "application/json", data) }
	}
	structured := func(doc string) func() *http.Request {
		return func() *http.Request { return Structured(doc) }
	}
	return []httpxtest.Case{
		{Name: "over the limit", Status: 413, Request: binary(httpxtest.Fill(`{"a":"`, `a`, `"}`, size+1))},
		{Name: "data of blank strings", Status: 400, Request: binary(httpxtest.Fill(`{"a":[`, `"",`, `""]}`, size))},
		{Name: "data of many keys", Status: 400, Request: binary(httpxtest.Keys(`{`, `k`, `0`, `}`, size))},
		{Name: "structured, data of blank strings", Status: 400, Request: structured(httpxtest.Fill(head+`"data":{"a":[`, `"",`, `""]}}`, size))},
		{Name: "huge data content type", Status: 400, Request: structured(httpxtest.Fill(head+`"datacontenttype":"`, `a`, `","data":{}}`, size))},
		{Name: "many extensions", Status: 400, Request: structured(httpxtest.Keys(head, `x`, `""`, `}`, size))},
		{Name: "many invalid extension names", Status: 400, Request: structured(httpxtest.Keys(head, `x_`, `""`, `}`, size))},
		{Name: "an extension of a huge array", Status: 400, Request: structured(httpxtest.Fill(head+`"x":[`, `"",`, `""]}`, size))},
		{Name: "not a CloudEvent", Status: 400, Request: structured(httpxtest.Fill(`{"a":[`, `"",`, `""]}`, size))},
	}
}
