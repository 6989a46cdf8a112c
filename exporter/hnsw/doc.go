// Package hnsw reads the pages of a pgvector HNSW index and measures its graph.
package hnsw
