/// Who a member is in the group. Staff (facilitator, cofacilitator) run the room.
public enum Role: String, CaseIterable, Hashable, Sendable {
    case facilitator
    case cofacilitator
    case participant
    /// A family member invited to one session.
    case guest
    /// A supervisor or trainee: always visible in the roster, never hidden.
    case observer

    public var isStaff: Bool { self == .facilitator || self == .cofacilitator }
}
