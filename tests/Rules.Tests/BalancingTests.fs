module Lb.Rules.Tests.BalancingTests
