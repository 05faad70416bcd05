// Decodes each line of vectors.txt the way a Go MCP server built on encoding/json
// (v1) does: the envelope with params kept raw, then the tools/call params, then the
// tool's own input struct. Prints one JSON line per vector.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
)

type envelope struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type callParams struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Meta      map[string]any  `json:"_meta"`
}

type toolInput struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

func main() {
	fmt.Fprintf(os.Stderr, "decoded with %s encoding/json\n", runtime.Version())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := in.Bytes()
		out := map[string]any{"input": string(line)}
		var env envelope
		if err := json.Unmarshal(line, &env); err != nil {
			out["error"] = err.Error()
		}
		out["method"] = env.Method
		var p callParams
		if len(env.Params) > 0 {
			if err := json.Unmarshal(env.Params, &p); err != nil {
				out["error"] = err.Error()
			}
		}
		out["name"] = p.Name
		if p.Arguments != nil {
			var args any
			_ = json.Unmarshal(p.Arguments, &args)
			out["arguments"] = args
			var ti toolInput
			_ = json.Unmarshal(p.Arguments, &ti)
			out["tool_key"] = ti.Key
			out["tool_path"] = ti.Path
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	}
}
