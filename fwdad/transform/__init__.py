"""The transform: tangent pass, derivative rule table and naming."""
