module Lb.Rules.Tests.Smoke
open Xunit
open FsCheck.Xunit
[<Property>]
let ``reverse twice is identity`` (xs: int list) = List.rev (List.rev xs) = xs
