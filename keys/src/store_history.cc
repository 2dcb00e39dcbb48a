#include "store_history.h"

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

std::vector<AuditEntry> UnsavedChanges(const std::vector<AuditEntry>& since_save, const std::string& store_file) {
  std::vector<AuditEntry> pending;
  for (const AuditEntry& entry : since_save) {
    const AuditEvent& e = entry.event;
    if (e.action == AuditAction::kLogRecovered && e.target == store_file) {
      pending.clear();  // the store file was replaced by its backup; that record names what it undid
      continue;
    }
    if (!ChangesStore(e.action)) continue;
    if (e.outcome == AuditOutcome::kSuccess) {
      pending.push_back(entry);
    } else if (e.outcome == AuditOutcome::kFailed) {
      for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
        if (SameChange(it->event, e)) {
          pending.erase(std::next(it).base());
          break;
        }
      }
    }
  }
  return pending;
}

std::string DescribeChange(const AuditEntry& entry) {
  std::string text = "record " + std::to_string(entry.sequence) + " (" + AuditActionName(entry.event.action);
  if (!entry.event.target.empty()) text += " " + entry.event.target;
  if (entry.event.key_version != 0) text += " v" + std::to_string(entry.event.key_version);
  return text + ")";
}

}  // namespace veil::keys::internal
