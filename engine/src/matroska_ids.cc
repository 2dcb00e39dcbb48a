#include "matroska_ids.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "veil/keys/fs.h"
#include "veil/keys/secret.h"

namespace veil::engine::internal {
namespace {

// EBML element ids (marker bits kept, as the Matroska specification writes them).
constexpr uint32_t kEbmlHeader = 0x1A45DFA3, kSegment = 0x18538067, kCluster = 0x1F43B675, kInfo = 0x1549A966,
                   kTracks = 0x1654AE6B, kTags = 0x1254C367, kTrackEntry = 0xAE, kTag = 0x7373, kTargets = 0x63C0,
                   kSegmentUid = 0x73A4, kTrackUid = 0x73C5, kTagTrackUid = 0x63C5, kCrc32 = 0xBF;
constexpr size_t kMaxHeader = 1u << 20;  // FFmpeg's header (before the first cluster) is a few hundred bytes

uint32_t Crc32(const uint8_t* p, size_t n) {  // ISO-HDLC (zlib's), as Matroska uses it
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

struct Element {
  uint32_t id = 0;
  size_t data = 0;  // offset of its data
  size_t end = 0;   // offset past its data (the buffer's end for an unknown size)
};

// Reads a variable-length integer of 1 to `max_len` bytes at `pos`; `keep_marker` for ids.
bool ReadVint(const std::string& b, size_t* pos, size_t max_len, bool keep_marker, uint64_t* value, bool* unknown) {
  if (*pos >= b.size()) return false;
  const uint8_t first = static_cast<uint8_t>(b[*pos]);
  size_t len = 1;
  while (len <= max_len && !(first & (0x80u >> (len - 1)))) ++len;
  if (len > max_len || *pos + len > b.size()) return false;
  uint64_t v = keep_marker ? first : (first & (0xFFu >> len));
  bool all_ones = v == (0xFFu >> len);
  for (size_t i = 1; i < len; ++i) {
    const uint8_t byte = static_cast<uint8_t>(b[*pos + i]);
    v = (v << 8) | byte;
    all_ones = all_ones && byte == 0xFF;
  }
  if (unknown) *unknown = !keep_marker && all_ones;
  *value = v;
  *pos += len;
  return true;
}

// `clamp`: an element that runs past `limit` (the segment, past the header read) ends there.
bool ReadElement(const std::string& b, size_t pos, size_t limit, Element* e, bool clamp = false) {
  uint64_t id = 0, size = 0;
  bool unknown = false;
  if (!ReadVint(b, &pos, 4, true, &id, nullptr) || !ReadVint(b, &pos, 8, false, &size, &unknown)) return false;
  if (pos > limit) return false;  // the header itself runs past its parent
  e->id = static_cast<uint32_t>(id);
  e->data = pos;
  if (unknown) {
    e->end = limit;
    return true;
  }
  if (size > limit - pos) {
    if (!clamp) return false;
    size = limit - pos;
  }
  e->end = pos + static_cast<size_t>(size);
  return true;
}

// The places of the ids to replace, and the CRC-32 elements over them.
struct Places {
  std::vector<size_t> segment_uid;               // 16-byte values
  std::vector<std::pair<size_t, size_t>> tracks;  // (offset, length 8) of TrackUID and TagTrackUID values
  struct Crc {
    size_t value;        // the 4 bytes, little-endian
    size_t from, to;     // what they cover: the rest of the parent's data
  };
  std::vector<Crc> crcs;
};

// Walks the children of [from, to), descending into the masters that lead to an id. A CRC-32 is
// accepted only as the first child of a level-1 element (depth 0), as FFmpeg writes it.
bool Walk(const std::string& b, size_t from, size_t to, Places* places, int depth = 0) {
  size_t pos = from;
  bool first = true;
  while (pos < to) {
    Element e;
    if (!ReadElement(b, pos, to, &e)) return false;
    if (e.id == kCrc32) {
      if (!first || depth > 0 || e.end - e.data != 4) return false;
      places->crcs.push_back({e.data, e.end, to});
    } else if (e.id == kSegmentUid) {
      if (e.end - e.data != 16) return false;
      places->segment_uid.push_back(e.data);
    } else if (e.id == kTrackUid || e.id == kTagTrackUid) {
      if (e.end - e.data != 8) return false;  // FFmpeg writes UIDs as 8 bytes, so equal values have equal bytes
      places->tracks.push_back({e.data, e.end - e.data});
    } else if (e.id == kInfo || e.id == kTracks || e.id == kTags || e.id == kTrackEntry || e.id == kTag ||
               e.id == kTargets) {
      if (!Walk(b, e.data, e.end, places, depth + 1)) return false;
    }
    first = false;
    pos = e.end;
  }
  return true;
}

// The header up to the first cluster, walked: false when it is not a Matroska file as FFmpeg writes it.
bool FindPlaces(const std::string& b, size_t* header_end, Places* places) {
  Element ebml, segment;
  if (!ReadElement(b, 0, b.size(), &ebml) || ebml.id != kEbmlHeader) return false;
  if (!ReadElement(b, ebml.end, b.size(), &segment, /*clamp=*/true) || segment.id != kSegment) return false;
  size_t pos = segment.data;
  while (pos < segment.end) {
    Element e;
    const size_t at = pos;
    uint64_t id = 0;
    if (!ReadVint(b, &pos, 4, true, &id, nullptr)) return false;
    if (id == kCluster) {
      *header_end = at;
      return true;
    }
    if (!ReadElement(b, at, segment.end, &e)) return false;  // a level-1 element cut by the buffer
    if ((e.id == kInfo || e.id == kTracks || e.id == kTags) && !Walk(b, e.data, e.end, places)) return false;
    pos = e.end;
  }
  return false;  // no cluster within the buffer
}

uint32_t LoadLe32(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

void StoreLe32(std::string* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

void UpdateCrcs(std::string* b, const Places& places) {
  // Inner CRCs never occur (checked), so the order does not matter.
  for (const auto& c : places.crcs) {
    StoreLe32(b, c.value, Crc32(reinterpret_cast<const uint8_t*>(b->data()) + c.from, c.to - c.from));
  }
}

Status WriteAt(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      return IoError("cannot write " + path + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  return ::close(fd) == 0 ? Status::Ok() : IoError("cannot write " + path);
}

StatusOr<std::string> ReadPrefix(const std::string& path, size_t max) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
  std::string b(max, '\0');
  size_t got = 0;
  while (got < max) {
    const ssize_t n = ::pread(fd, b.data() + got, max - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return IoError("cannot read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  b.resize(got);
  return b;
}

}  // namespace

Status MakeMatroskaIdsDeterministic(const std::string& path) {
  VEIL_ASSIGN_OR_RETURN(std::string b, ReadPrefix(path, kMaxHeader));
  const Status unexpected = DataLossError(path + " is not a Matroska file as expected (its header does not parse)");
  size_t header_end = 0;
  Places places;
  if (!FindPlaces(b, &header_end, &places)) return unexpected;
  for (const auto& c : places.crcs) {
    if (LoadLe32(b, c.value) != Crc32(reinterpret_cast<const uint8_t*>(b.data()) + c.from, c.to - c.from)) return unexpected;
  }
  b.resize(header_end);
  // Each track's UID appears in its entry and in the tags that target it: equal values stay equal.
  std::vector<std::string> old_track_uids;
  std::vector<size_t> track_of;
  for (const auto& [at, len] : places.tracks) {
    const std::string v = b.substr(at, len);
    size_t i = 0;
    while (i < old_track_uids.size() && old_track_uids[i] != v) ++i;
    if (i == old_track_uids.size()) old_track_uids.push_back(v);
    track_of.push_back(i);
  }
  // The content's digest, with everything that is about to change zeroed.
  for (size_t at : places.segment_uid) std::memset(b.data() + at, 0, 16);
  for (const auto& [at, len] : places.tracks) std::memset(b.data() + at, 0, len);
  for (const auto& c : places.crcs) std::memset(b.data() + c.value, 0, 4);
  VEIL_RETURN_IF_ERROR(WriteAt(path, b));
  VEIL_ASSIGN_OR_RETURN(std::string digest, keys::Sha256File(path));
  // Ids from the digest: the segment UID its first 16 bytes, track i's UID from SHA-256(digest, i)
  // (never zero).
  for (size_t at : places.segment_uid) std::memcpy(b.data() + at, digest.data(), 16);
  for (size_t k = 0; k < places.tracks.size(); ++k) {
    const auto [at, len] = places.tracks[k];
    const std::string uid = keys::Sha256(digest + "track" + std::to_string(track_of[k]));
    std::memcpy(b.data() + at, uid.data(), len);
    b[at + len - 1] = static_cast<char>(b[at + len - 1] | 1);
  }
  UpdateCrcs(&b, places);
  return WriteAt(path, b);
}

}  // namespace veil::engine::internal
