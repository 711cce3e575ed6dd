module Lb.Rules.Tests.Generators
