/// RFC 9110 §7.6.1 (Connection options) and RFC 9112 §6.3 (Content-Length) as laws; the same over real sockets:
/// Host.Tests ConformanceTests.
module Lb.Rules.Tests.HopByHopTests

open System
open System.Text.RegularExpressions
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

/// The grammar itself, written independently of the implementation: OWS 1*DIGIT OWS.
let private contentLengthGrammar = Regex(@"\A[ \t]*[0-9]+[ \t]*\z", RegexOptions.CultureInvariant)

/// Content-Length values: short strings over digits, signs, OWS, list commas and junk, plus well-formed ones.
let private contentLengths =
    let alphabet = Gen.elements [ '0'; '1'; '5'; '9'; '+'; '-'; ' '; '\t'; ','; 'x'; ';'; '.'; 'e' ]
    Gen.oneof [
        gen {
            let! n = Gen.choose (0, 6)
            let! chars = Gen.arrayOfLength n alphabet
            return String chars }
        gen {
            let! digits = Gen.nonEmptyListOf (Gen.elements [ '0' .. '9' ])
            let! before = Gen.elements [ ""; " "; "\t"; "  " ]
            let! after = Gen.elements [ ""; " "; "\t " ]
            return before + String(Array.ofList digits) + after } ]

[<Property(MaxTest = 2000)>]
let ``A Content-Length is accepted exactly when it is 1*DIGIT with OWS around`` () =
    forAll contentLengths (fun v -> HopByHop.isValidContentLength v = contentLengthGrammar.IsMatch v)

[<Fact>]
let ``The generator reaches both accepted and refused values`` () =
    let values = Gen.sample 2000 contentLengths
    let accepted = values |> Array.filter HopByHop.isValidContentLength |> Array.length
    Assert.InRange(accepted, 200, 1800)

[<Property(MaxTest = 500)>]
let ``A signed or listed Content-Length is never accepted`` (n: uint32) =
    [ $"+{n}"; $"-{n}"; $"{n},{n}"; $"{n}, {n}"; $"{n} {n}" ] |> List.forall (HopByHop.isValidContentLength >> not)

[<Fact>]
let ``The probe findings are refused and plain numbers accepted`` () =
    for v in [ "+5"; "-5"; "-0"; "+0"; " 5 5"; "5,6"; "5, 5"; "5;"; "x5"; "0x5"; ""; " "; "５" ] do
        Assert.False(HopByHop.isValidContentLength v, $"accepted {v}")
    for v in [ "0"; "5"; "005"; " 5"; "5\t"; "99999999999999999999" ] do
        Assert.True(HopByHop.isValidContentLength v, $"refused {v}")

let private fieldNames = Gen.elements [ "X-Hop"; "x-hop"; "Keep-Alive"; "close"; "Upgrade"; "TE"; "Host"; "Content-Length"; "transfer-encoding"; "X-Forwarded-For"; "Cookie" ]

/// Connection header values: options with OWS and empty list elements, over one or more header lines.
let private connectionValues =
    let line =
        gen {
            let! options = Gen.listOf (Gen.oneof [ fieldNames; Gen.constant ""; Gen.constant "a b" ])
            let! sep = Gen.elements [ ","; ", "; " ,"; ",\t" ]
            return String.Join(sep, options) }
    Gen.arrayOf line

let private framing = set [ "host"; "content-length"; "transfer-encoding" ]

[<Property(MaxTest = 1000)>]
let ``Every option named in Connection is removed, lower-case and once, but Host and the framing fields`` () =
    forAll connectionValues (fun values ->
        let removed = HopByHop.connectionListed values
        let options =
            values |> Array.collect (fun v -> v.Split ',') |> Array.map (fun o -> o.Trim([| ' '; '\t' |]).ToLowerInvariant())
            |> Array.filter (fun o -> o <> "" && not (o.Contains ' ')) |> Set.ofArray
        Set.ofArray removed = Set.difference options framing
        && removed.Length = (Array.distinct removed).Length
        && removed |> Array.forall (fun r -> r = r.ToLowerInvariant()))

[<Fact>]
let ``The probe's Connection headers name X-Hop and the hop-by-hop options`` () =
    Assert.Equal<string array>([| "close"; "x-hop" |], HopByHop.connectionListed [| "close, X-Hop" |])
    Assert.Equal<string array>([| "keep-alive"; "x-hop" |], HopByHop.connectionListed [| "keep-alive, X-Hop" |])
    Assert.Equal<string array>([| "close"; "x-hop" |], HopByHop.connectionListed [| "close, Host, X-Hop"; "Content-Length, x-hop" |])
