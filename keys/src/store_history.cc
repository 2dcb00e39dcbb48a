#include "store_history.h"

#include <iterator>

namespace veil::keys::internal {

bool ChangesStore(AuditAction action) {
  switch (action) {
    case AuditAction::kKeyringCreated:
    case AuditAction::kKeyRotated:
    case AuditAction::kKeyDisabled:
    case AuditAction::kKeyEnabled:
    case AuditAction::kKeyDestroyed:
    case AuditAction::kPrincipalAdded:
    case AuditAction::kPrincipalRevoked:
    case AuditAction::kPolicyChanged:
      return true;
    default:
      return false;
  }
}

namespace {

bool SameChange(const AuditEvent& a, const AuditEvent& b) {
  return a.action == b.action && a.target == b.target && a.keyring == b.keyring && a.key_version == b.key_version;
}

}  // namespace

UnsavedChanges FindUnsavedChanges(const std::vector<AuditEntry>& since_save) {
  struct Change {
    const AuditEntry* entry;
    bool accounted;
  };
  std::vector<Change> changes;  // every successful change, in log order
  for (const AuditEntry& entry : since_save) {
    const AuditEvent& e = entry.event;
    if (!ChangesStore(e.action)) continue;
    if (e.outcome == AuditOutcome::kSuccess) {
      changes.push_back({&entry, false});
    } else if (e.outcome == AuditOutcome::kFailed) {  // accounts for the latest such change not yet accounted for
      for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
        if (!it->accounted && SameChange(it->entry->event, e)) {
          it->accounted = true;
          break;
        }
      }
    }
  }
  UnsavedChanges out;
  for (const Change& c : changes) {
    if (!c.accounted) {
      out.missing.push_back(*c.entry);
    } else if (!out.missing.empty()) {
      out.trailing = false;  // an accounted change after an unaccounted one: not a crash's trace
    }
  }
  return out;
}

bool RecoveredSince(const std::vector<AuditEntry>& records, uint64_t sequence, const std::string& store_file) {
  for (const AuditEntry& r : records) {
    if (r.sequence > sequence && r.event.action == AuditAction::kLogRecovered && r.event.target == store_file) return true;
  }
  return false;
}

std::string DescribeChanges(const std::vector<AuditEntry>& entries) {
  std::string text;
  for (const AuditEntry& entry : entries) {
    if (!text.empty()) text += ", ";
    text += "record " + std::to_string(entry.sequence) + " (" + AuditActionName(entry.event.action);
    if (!entry.event.target.empty()) text += " " + entry.event.target;
    if (entry.event.key_version != 0) text += " v" + std::to_string(entry.event.key_version);
    text += ")";
  }
  return text;
}

}  // namespace veil::keys::internal
