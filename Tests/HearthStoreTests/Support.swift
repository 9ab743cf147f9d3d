import Foundation
import HearthCore
import XCTest

@testable import HearthStore

/// A fresh directory under the system temp dir, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> String {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("hearth-store-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func openStore(_ test: XCTestCase, durability: Store.Durability = .normal) throws -> (Store, String) {
    let path = (try temporaryDirectory(test) as NSString).appendingPathComponent(Store.fileName)
    return (try Store(path: path, durability: durability), path)
}

let p1 = ParticipantID(1)
let p2 = ParticipantID(2)

/// One sample of every `ClientCommand` case (several for cases with optional or enum fields).
let sampleCommands: [ClientCommand] = [
    .setMedia(audio: true, video: nil),
    .setMedia(audio: nil, video: false),
    .raiseHand,
    .lowerHand(nil),
    .lowerHand(p2),
    .chat(to: .room, text: "hello \"room\" \n ünïcødé 😀"),
    .chat(to: .staff, text: "to staff"),
    .chat(to: .member(p2), text: ""),
    .signal(to: p2, kind: .offer, payload: "{\"sdp\":\"v=0\"}"),
    .requestHelp,
    .acknowledgeConsent(version: "2024-06"),
    .setLocation("Springfield, IL"),
    .leave,
    .admit(p2),
    .admitAll,
    .deny(p2, reason: "not on the list"),
    .deny(p2, reason: nil),
    .sendBack(p2),
    .messageWaitingRoom("starting in 5"),
    .mute(p2, audio: true, video: false),
    .muteAll(video: true),
    .askUnmute(p2, audio: true, video: true),
    .remove(p2, ban: true, reason: "disruptive"),
    .remove(p2, ban: false, reason: nil),
    .setRole(p2, .cofacilitator),
    .setRole(p1, .observer),
    .grant(p2, media: true, chat: false),
    .spotlight(p2),
    .spotlight(nil),
    .lowerAllHands,
    .deleteChat(MessageID(42)),
    .setLocked(true),
    .setLocked(false),
    .updateSettings(SettingsChange(chatPolicy: .staffOnly, privateMessages: true, selfUnmute: false, waitingRoom: nil)),
    .updateSettings(SettingsChange()),
    .acknowledgeHelp(p2),
    .end,
    .planBreakouts(
        [BreakoutPlanEntry(name: "Pair \"1\" ünï", members: [p1, p2]), BreakoutPlanEntry(name: "Empty")],
        automatic: true),
    .planBreakouts([BreakoutPlanEntry(name: "By hand", members: [p2])], automatic: false),
    .openBreakouts(durationSeconds: 600, warningSeconds: 0),
    .openBreakouts(durationSeconds: nil, warningSeconds: nil),
    .closeBreakouts,
    .closeBreakout(BreakoutID(UInt32.max)),
    .moveToBreakout(p2, BreakoutID(3)),
    .moveToBreakout(p2, nil),
    .visitBreakout(BreakoutID(1)),
    .visitBreakout(nil),
    .broadcastToBreakouts("Two minutes left"),
    .pullAside(p2),
]

/// The case index of a command. Exhaustive: a new `ClientCommand` case stops this compiling,
/// and `testSamplesCoverEveryCommandCase` then demands a sample of it.
func caseIndex(_ command: ClientCommand) -> Int {
    switch command {
    case .setMedia: return 0
    case .raiseHand: return 1
    case .lowerHand: return 2
    case .chat: return 3
    case .signal: return 4
    case .requestHelp: return 5
    case .acknowledgeConsent: return 6
    case .setLocation: return 7
    case .leave: return 8
    case .admit: return 9
    case .admitAll: return 10
    case .deny: return 11
    case .sendBack: return 12
    case .messageWaitingRoom: return 13
    case .mute: return 14
    case .muteAll: return 15
    case .askUnmute: return 16
    case .remove: return 17
    case .setRole: return 18
    case .grant: return 19
    case .spotlight: return 20
    case .lowerAllHands: return 21
    case .deleteChat: return 22
    case .setLocked: return 23
    case .updateSettings: return 24
    case .acknowledgeHelp: return 25
    case .end: return 26
    case .planBreakouts: return 27
    case .openBreakouts: return 28
    case .closeBreakouts: return 29
    case .closeBreakout: return 30
    case .moveToBreakout: return 31
    case .visitBreakout: return 32
    case .broadcastToBreakouts: return 33
    case .pullAside: return 34
    }
}
let commandCaseCount = 35

/// Settings with every field away from its default.
func unusualSettings() -> RoomSettings {
    var s = RoomSettings()
    s.capacity = 7
    s.waitingRoom = false
    s.consentVersion = "v3"
    s.requireLocation = true
    s.chatPolicy = .off
    s.privateMessages = true
    s.selfUnmute = false
    s.graceMilliseconds = 12_345
    s.facilitatorDrop = .waitingRoom
    s.replayWindow = 99
    s.chatHistory = 77
    s.maxChatLength = 321
    s.maxLocationLength = 111
    s.maxReasonLength = 222
    s.maxSignalBytes = 4096
    s.maxWaiting = 7
    s.consentText = "I will keep what is said here confidential."
    s.opensAt = Instant(milliseconds: 5_000)
    s.closesAt = Instant(milliseconds: 9_000)
    s.idleCloseMilliseconds = 4_321
    return s
}
