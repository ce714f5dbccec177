// swift-tools-version:6.1
import PackageDescription

/// One list of settings for every Swift target: Swift 6 language mode with strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// Linux only: the bus polls with epoll and eventfd, processes are spawned with prctl(PR_SET_PDEATHSIG), the I/O
// threads run under SCHED_BATCH, network namespaces come from unshare. There is no macOS build, so no platforms.
let package = Package(
    name: "berth",
    products: [
        .executable(name: "berth", targets: ["berth"]),
        .executable(name: "berth-router", targets: ["berth-router"]),
        .executable(name: "berth-sidecar", targets: ["berth-sidecar"]),
        .executable(name: "berth-edge", targets: ["berth-edge"]),
        .library(name: "BerthEdge", targets: ["BerthEdge"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
    ],
    targets: [
        // C libraries, each imported by exactly one Swift module.
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(
            name: "CBerthProto",
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),

        // Libraries.
        .target(name: "CBerthMemory"),
        .target(
            name: "BerthBus",
            dependencies: [
                "CZeroMQ", "CBerthMemory",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthWire",
            dependencies: ["CBerthProto"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthLink",
            dependencies: ["BerthBus", "BerthWire", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthMetrics",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthRouter",
            dependencies: [
                "BerthBus", "BerthWire", "BerthLink", "BerthMetrics",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthHTTP",
            dependencies: ["BerthBus", "BerthWire"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthSidecar",
            dependencies: [
                "BerthBus", "BerthWire", "BerthLink", "BerthHTTP", "BerthMetrics", "BerthEdge",
                // Egress: the app's calls go into the mesh as an edge's do, and out to the internet over HTTP.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"), "BerthProcess", "CBerthNetns",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthEdge",
            dependencies: [
                "BerthBus", "BerthWire", "BerthLink", "BerthHTTP", "BerthMetrics", "BerthOTLP",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"), "BerthCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CBerthSpawn"
        ),
        .target(
            name: "CBerthNetns"
        ),
        .target(
            name: "BerthProcess",
            dependencies: ["CBerthSpawn", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthSpec",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthCompose",
            dependencies: ["BerthSpec", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthOTLP",
            dependencies: [
                "BerthWire", "BerthTap",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthTap",
            dependencies: ["BerthBus", "BerthWire", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthSupervisor",
            dependencies: [
                "BerthBus", "BerthCompose", "BerthProcess", "BerthTap", "BerthWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthDashboard",
            dependencies: [
                "BerthBus", "BerthTap", "BerthWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthCommandLine",
            dependencies: [
                "BerthBus", "BerthSpec", "BerthMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // Executables: parse arguments, build the service, run it.
        .executableTarget(
            name: "berth-router",
            dependencies: ["BerthRouter", "BerthCommandLine"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "berth-sidecar",
            dependencies: ["BerthSidecar", "BerthLink", "BerthCommandLine", "BerthSpec", "BerthOTLP"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "berth-edge",
            dependencies: ["BerthEdge", "BerthCommandLine"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthCommandLine", "BerthWire", "BerthBus", "BerthCompose", "BerthTap", "BerthProcess", "BerthSupervisor",
                "BerthDashboard", "BerthLink",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // The original demo: container A in Swift, container B in Python (Compose/apps/), and the seed's Worker.
        .executableTarget(
            name: "demo-container-a",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                // Compose/egress.yaml: A posts to B itself, through its sidecar.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "demo-edge",
            dependencies: ["BerthEdge", "BerthCommandLine"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "streaming-edge",
            dependencies: ["BerthEdge", "BerthCommandLine"],
            swiftSettings: swiftSettings
        ),

        // Tests.
        .testTarget(
            name: "BerthWireTests",
            dependencies: ["BerthWire", "BerthTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthComposeTests",
            dependencies: ["BerthCompose"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthSupervisorTests",
            dependencies: ["BerthSupervisor", "BerthCompose"],
            swiftSettings: swiftSettings
        ),
        // Test helpers more than one test target uses.
        .target(
            name: "BerthTestSupport",
            dependencies: ["BerthBus", "BerthTap", "BerthWire"],
            path: "Tests/BerthTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthTapTests",
            dependencies: ["BerthTap", "BerthBus", "BerthWire", "BerthTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthDashboardTests",
            dependencies: [
                "BerthDashboard", "BerthTap", "BerthBus", "BerthWire", "BerthTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthRouterTests",
            dependencies: ["BerthRouter", "BerthWire"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthLinkTests",
            dependencies: ["BerthLink"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthSidecarTests",
            dependencies: ["BerthSidecar", "BerthBus", "BerthWire", "BerthProcess"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthEdgeTests",
            dependencies: ["BerthEdge", "BerthBus", "BerthWire"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthHTTPTests",
            dependencies: ["BerthHTTP", "BerthBus", "BerthWire"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthOTLPTests",
            dependencies: ["BerthOTLP", "BerthWire"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthBusTests",
            dependencies: ["BerthBus", "BerthTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthIntegrationTests",
            dependencies: [
                "BerthBus", "BerthWire", "BerthTap", "BerthTestSupport",
                "berth-router", "berth-sidecar", "berth-edge", "berth", "demo-edge", "streaming-edge", "demo-container-a",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["Apps"],
            swiftSettings: swiftSettings
        ),
    ]
)
