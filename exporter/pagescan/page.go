// Package pagescan reads the raw 8 KiB pages of one relation and decodes the parts every
// PostgreSQL page shares: the header, the line pointers, item pointers (TIDs) and the special
// area. The decoders never panic: out-of-range offsets and lengths become errors, so that a
// corrupt page is something a caller can count and step over.
package pagescan

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PageSize is PostgreSQL's block size; pgvector indexes and vectorheal assume the default.
const PageSize = 8192

// HeaderSize is the size of PageHeaderData; line pointers start right after it.
const HeaderSize = 24

// ErrBadPage is wrapped by every decoding error, so callers can tell a corrupt page from an I/O
// error.
var ErrBadPage = errors.New("bad page")

// Header is PageHeaderData.
type Header struct {
	LSN             uint64
	Checksum        uint16
	Flags           uint16
	Lower           uint16 // end of the line pointer array
	Upper           uint16 // start of the tuple space
	Special         uint16 // start of the special area
	PageSizeVersion uint16
	PruneXID        uint32
}

// ParseHeader decodes and checks the page header: the page must be PageSize long and
// lower <= upper <= special <= PageSize must hold.
func ParseHeader(p []byte) (Header, error) {
	if len(p) != PageSize {
		return Header{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadPage, len(p), PageSize)
	}
	h := Header{
		LSN:             PageLSN(p),
		Checksum:        binary.LittleEndian.Uint16(p[8:]),
		Flags:           binary.LittleEndian.Uint16(p[10:]),
		Lower:           binary.LittleEndian.Uint16(p[12:]),
		Upper:           binary.LittleEndian.Uint16(p[14:]),
		Special:         binary.LittleEndian.Uint16(p[16:]),
		PageSizeVersion: binary.LittleEndian.Uint16(p[18:]),
		PruneXID:        binary.LittleEndian.Uint32(p[20:]),
	}
	if h.Lower < HeaderSize || h.Lower > h.Upper || h.Upper > h.Special || int(h.Special) > PageSize {
		return h, fmt.Errorf("%w: header lower=%d upper=%d special=%d", ErrBadPage, h.Lower, h.Upper, h.Special)
	}
	if h.PageSizeVersion&0xFF00 != PageSize {
		return h, fmt.Errorf("%w: page size field %d", ErrBadPage, h.PageSizeVersion&0xFF00)
	}
	return h, nil
}

// IsNew reports whether the page is all zeros (allocated but never initialised, as after a
// crash during relation extension). Such pages are valid and hold nothing.
func IsNew(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// Line pointer flags (lp_flags).
const (
	LPUnused   = 0
	LPNormal   = 1
	LPRedirect = 2
	LPDead     = 3
)

// ItemID is one line pointer.
type ItemID struct {
	Off   uint16 // byte offset of the item, or the target offset of a redirect
	Flags uint8
	Len   uint16
}

// ItemCount returns the number of line pointers of a page whose header has been checked.
func ItemCount(h Header) int { return (int(h.Lower) - HeaderSize) / 4 }

// LinePointer decodes line pointer n (1-based, as OffsetNumber) of page p.
func LinePointer(p []byte, h Header, n int) (ItemID, error) {
	if n < 1 || n > ItemCount(h) {
		return ItemID{}, fmt.Errorf("%w: line pointer %d of %d", ErrBadPage, n, ItemCount(h))
	}
	w := binary.LittleEndian.Uint32(p[HeaderSize+4*(n-1):])
	return ItemID{Off: uint16(w & 0x7FFF), Flags: uint8((w >> 15) & 3), Len: uint16(w >> 17)}, nil
}

// Item returns the bytes of the normal item n (1-based). It checks that the item lies inside
// the tuple space of the page.
func Item(p []byte, h Header, n int) ([]byte, error) {
	lp, err := LinePointer(p, h, n)
	if err != nil {
		return nil, err
	}
	if lp.Flags != LPNormal {
		return nil, fmt.Errorf("%w: item %d has flags %d, not normal", ErrBadPage, n, lp.Flags)
	}
	end := int(lp.Off) + int(lp.Len)
	if lp.Len == 0 || lp.Off < h.Upper || end > int(h.Special) {
		return nil, fmt.Errorf("%w: item %d at %d+%d outside tuple space %d..%d", ErrBadPage, n, lp.Off, lp.Len, h.Upper, h.Special)
	}
	return p[lp.Off:end], nil
}

// TID is an ItemPointer: a block number and a 1-based line pointer offset.
type TID struct {
	Block  uint32
	Offset uint16
}

// TIDSize is the on-disk size of an ItemPointerData.
const TIDSize = 6

// InvalidBlock is InvalidBlockNumber.
const InvalidBlock = 0xFFFFFFFF

// Valid reports whether t is a valid item pointer (offset 0 is InvalidOffsetNumber).
func (t TID) Valid() bool { return t.Offset != 0 && t.Block != InvalidBlock }

// String formats t as PostgreSQL prints a tid.
func (t TID) String() string { return fmt.Sprintf("(%d,%d)", t.Block, t.Offset) }

// DecodeTID decodes the 6-byte item pointer at the start of b; b must hold at least TIDSize
// bytes.
func DecodeTID(b []byte) TID {
	hi := binary.LittleEndian.Uint16(b[0:])
	lo := binary.LittleEndian.Uint16(b[2:])
	return TID{Block: uint32(hi)<<16 | uint32(lo), Offset: binary.LittleEndian.Uint16(b[4:])}
}

// EncodeTID writes t into the first TIDSize bytes of b.
func EncodeTID(b []byte, t TID) {
	binary.LittleEndian.PutUint16(b[0:], uint16(t.Block>>16))
	binary.LittleEndian.PutUint16(b[2:], uint16(t.Block))
	binary.LittleEndian.PutUint16(b[4:], t.Offset)
}

// InvalidTID is the value PostgreSQL writes for an empty item pointer.
var InvalidTID = TID{Block: InvalidBlock, Offset: 0}

// SpecialSize is the size of the special area of pgvector's index pages.
const SpecialSize = 8

// Special is the special area pgvector keeps on every index page.
type Special struct {
	NextBlock uint32 // next page of the chain, InvalidBlock at its end
	PageID    uint16 // 0xFF90 for HNSW, 0xFF84 for IVFFlat
}

// ParseSpecial decodes pgvector's special area; the header must place it at the end of the
// page with the expected size.
func ParseSpecial(p []byte, h Header) (Special, error) {
	if int(h.Special) != PageSize-SpecialSize {
		return Special{}, fmt.Errorf("%w: special area at %d, want %d", ErrBadPage, h.Special, PageSize-SpecialSize)
	}
	s := p[h.Special:]
	return Special{NextBlock: binary.LittleEndian.Uint32(s[0:]), PageID: binary.LittleEndian.Uint16(s[6:])}, nil
}

// ParseIndexPage decodes the header and special area of a page of one pgvector index type and
// checks that its page id is pageID.
func ParseIndexPage(p []byte, pageID uint16) (Header, Special, error) {
	h, err := ParseHeader(p)
	if err != nil {
		return Header{}, Special{}, err
	}
	sp, err := ParseSpecial(p, h)
	if err != nil {
		return Header{}, Special{}, err
	}
	if sp.PageID != pageID {
		return Header{}, Special{}, fmt.Errorf("%w: page id %#x, want %#x", ErrBadPage, sp.PageID, pageID)
	}
	return h, sp, nil
}

// MetapageContent checks block 0 of a pgvector index — page id, magic and version, which
// both index types keep in the first 8 bytes after the header — and returns the bytes after
// the header for the caller to decode the rest.
func MetapageContent(p []byte, pageID uint16, magic, version uint32) ([]byte, error) {
	if _, _, err := ParseIndexPage(p, pageID); err != nil {
		return nil, err
	}
	c := p[HeaderSize:]
	if m := binary.LittleEndian.Uint32(c[0:]); m != magic {
		return nil, fmt.Errorf("%w: metapage magic %#x", ErrBadPage, m)
	}
	if v := binary.LittleEndian.Uint32(c[4:]); v != version {
		return nil, fmt.Errorf("%w: metapage version %d", ErrBadPage, v)
	}
	return c, nil
}
