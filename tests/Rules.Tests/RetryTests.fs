module Lb.Rules.Tests.RetryTests

open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private idempotent = [ "GET"; "HEAD"; "OPTIONS"; "TRACE"; "PUT"; "DELETE" ]

let private methods = Gen.elements (idempotent @ [ "POST"; "PATCH"; "CONNECT"; "get"; "Delete"; "PROPFIND" ])

let private kinds = Gen.elements [ FailureKind.ConnectFailed; FailureKind.RequestFailed; FailureKind.TimedOut ]

/// One failed attempt: failures so far, retries, redispatch, retry_on_timeout, method, body, kind.
let private attempt =
    gen {
        let! failures = Gen.choose (-1, 12)
        let! retries = Gen.choose (-1, 10)
        let! redispatch = Gen.elements [ true; false ]
        let! retryOnTimeout = Gen.elements [ true; false ]
        let! method = methods
        let! hasBody = Gen.elements [ true; false ]
        let! kind = kinds
        return failures, retries, redispatch, retryOnTimeout, method, hasBody, kind
    }

let private isRetry decision =
    match decision with
    | GiveUp _ -> false
    | RetrySameServer
    | RetryOtherServer -> true

[<Property(MaxTest = 1000)>]
let ``a request that may have reached the server is replayed only if idempotent and without body`` () =
    forAll attempt (fun (failures, retries, redispatch, retryOnTimeout, method, hasBody, kind) ->
        let decision = Retry.decide (failures, retries, redispatch, retryOnTimeout, method, hasBody, kind)
        kind = FailureKind.ConnectFailed || not (isRetry decision) || (not hasBody && List.contains method idempotent))

[<Property(MaxTest = 1000)>]
let ``without retry_on_timeout timeouts are never retried and answer 504`` () =
    forAll attempt (fun (failures, retries, redispatch, _, method, hasBody, _) ->
        Retry.decide (failures, retries, redispatch, false, method, hasBody, FailureKind.TimedOut) = GiveUp 504)

[<Property(MaxTest = 1000)>]
let ``with retry_on_timeout a timeout is replayed exactly when the request is idempotent, bodyless and has retries left, else 504`` () =
    forAll attempt (fun (failures, retries, redispatch, _, method, hasBody, _) ->
        let decision = Retry.decide (failures, retries, redispatch, true, method, hasBody, FailureKind.TimedOut)
        let replayable = not hasBody && List.contains method idempotent && max 1 failures <= max 0 retries
        let again = if redispatch then RetryOtherServer else RetrySameServer
        decision = (if replayable then again else GiveUp 504))

[<Property(MaxTest = 500)>]
let ``a request is never retried more than retries times`` () =
    let scenario =
        Gen.zip3
            (Gen.zip3 (Gen.choose (-1, 10)) (Gen.elements [ true; false ]) (Gen.elements [ true; false ]))
            (Gen.zip methods (Gen.elements [ true; false ]))
            (Gen.listOf kinds)
    forAll scenario (fun ((retries, redispatch, retryOnTimeout), (method, hasBody), failures) ->
        // The shell's loop: each failure is decided with the count so far; the first GiveUp ends it.
        let decisions =
            failures
            |> List.mapi (fun i kind -> Retry.decide (i + 1, retries, redispatch, retryOnTimeout, method, hasBody, kind))
        let retried = decisions |> List.takeWhile isRetry |> List.length
        retried <= max 0 retries)

[<Property(MaxTest = 500)>]
let ``connection failures are retried up to retries times, on another server with redispatch`` () =
    let scenario = Gen.zip3 (Gen.choose (0, 10)) (Gen.elements [ true; false ]) (Gen.zip methods (Gen.elements [ true; false ]))
    forAll scenario (fun (retries, redispatch, (method, hasBody)) ->
        let decisions = [ 1 .. retries + 1 ] |> List.map (fun n -> Retry.decide (n, retries, redispatch, false, method, hasBody, FailureKind.ConnectFailed))
        let expected = if redispatch then RetryOtherServer else RetrySameServer
        decisions = List.replicate retries expected @ [ GiveUp 502 ])

[<Fact>]
let ``retry examples`` () =
    Assert.Equal(RetryOtherServer, Retry.decide (1, 3, true, false, "GET", false, FailureKind.RequestFailed))
    Assert.Equal(RetrySameServer, Retry.decide (1, 3, false, false, "DELETE", false, FailureKind.RequestFailed))
    Assert.Equal(GiveUp 502, Retry.decide (1, 3, true, false, "POST", false, FailureKind.RequestFailed))
    Assert.Equal(GiveUp 502, Retry.decide (1, 3, true, false, "PUT", true, FailureKind.RequestFailed))
    Assert.Equal(RetryOtherServer, Retry.decide (1, 3, true, false, "POST", true, FailureKind.ConnectFailed))
    Assert.Equal(GiveUp 502, Retry.decide (4, 3, true, false, "GET", false, FailureKind.ConnectFailed))
    Assert.Equal(GiveUp 502, Retry.decide (1, 0, true, false, "GET", false, FailureKind.ConnectFailed))
    Assert.Equal(GiveUp 504, Retry.decide (1, 3, true, false, "GET", false, FailureKind.TimedOut))
    Assert.Equal(GiveUp 502, Retry.decide (1, 3, true, false, "get", false, FailureKind.RequestFailed))
    Assert.Equal(RetryOtherServer, Retry.decide (1, 3, true, true, "GET", false, FailureKind.TimedOut))
    Assert.Equal(GiveUp 504, Retry.decide (4, 3, true, true, "GET", false, FailureKind.TimedOut))
    Assert.Equal(GiveUp 504, Retry.decide (1, 3, true, true, "POST", false, FailureKind.TimedOut))
    Assert.Equal(GiveUp 504, Retry.decide (1, 3, true, true, "PUT", true, FailureKind.TimedOut))
