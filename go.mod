module github.com/ambient-code/tokend

go 1.26
