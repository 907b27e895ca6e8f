#!/usr/bin/env bash
# Counts the lines the restructuring goals are measured in: Go lines of the
# product (not tests, not test support under test/, not examples), the lines
# of this module linked into the tokend binary, and test lines. Dev tools
# under hack/ ship nothing and are counted apart.
set -euo pipefail
cd "$(dirname "$0")/.."
count() { xargs -r cat | wc -l; }
mod=$(go list -m)
echo "product non-test lines: $(git ls-files '*.go' | grep -v '_test\.go$' | grep -vE '^(test|examples|hack)/' | count)"
echo "linked into tokend:     $(go list -deps -f "{{if .Module}}{{if eq .Module.Path \"$mod\"}}{{range .GoFiles}}{{\$.Dir}}/{{.}}
{{end}}{{end}}{{end}}" ./cmd/tokend | grep . | count)"
echo "dev tools (hack/):      $(git ls-files 'hack/*.go' | grep -v '_test\.go$' | count)"
echo "test lines:             $(git ls-files '*_test.go' | count)"
echo "packages:               $(go list ./... | wc -l)"
