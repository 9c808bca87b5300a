package backend

import (
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// Schema URNs served by the backend.
const (
	UserSchemaURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupSchemaURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseUserURN   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	listResponseURN     = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	patchOpURN          = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	favoriteColorAttrib = "favoriteColor"
)

// commonAttributes are "id" and "externalId". RFC 7643 §3.1 allows schemas
// to list the common attributes; listing them here is what makes elimity's
// filter validation accept `externalId eq "…"` and `id eq "…"`.
func commonAttributes() []schema.CoreAttribute {
	return []schema.CoreAttribute{
		schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
			CaseExact:   true,
			Description: optional.NewString("Unique identifier for the SCIM resource as defined by the service provider."),
			Mutability:  schema.AttributeMutabilityReadOnly(),
			Name:        "id",
			Returned:    schema.AttributeReturnedAlways(),
			Uniqueness:  schema.AttributeUniquenessServer(),
		})),
		schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
			CaseExact:   true,
			Description: optional.NewString("Identifier for the resource as defined by the provisioning client."),
			Name:        "externalId",
		})),
	}
}

// userSchema is elimity's RFC 7643 §4.1 core User schema plus the common
// attributes and the custom string attribute "favoriteColor".
func userSchema() schema.Schema {
	s := schema.CoreUserSchema()
	attrs := commonAttributes()
	attrs = append(attrs, s.Attributes...)
	attrs = append(attrs, schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
		Description: optional.NewString("The user's favorite color (custom attribute of this example backend)."),
		Name:        favoriteColorAttrib,
	})))
	s.Attributes = attrs
	return s
}

// enterpriseUserSchema is the RFC 7643 §4.3 enterprise User extension.
func enterpriseUserSchema() schema.Schema {
	return schema.ExtensionEnterpriseUser()
}

// groupSchema is the RFC 7643 §4.2 Group schema with displayName unique.
func groupSchema() schema.Schema {
	attrs := commonAttributes()
	attrs = append(attrs,
		schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
			Description: optional.NewString("A human-readable name for the Group. REQUIRED."),
			Name:        "displayName",
			Required:    true,
			Uniqueness:  schema.AttributeUniquenessServer(),
		})),
		schema.ComplexCoreAttribute(schema.ComplexParams{
			Description: optional.NewString("A list of members of the Group."),
			MultiValued: true,
			Name:        "members",
			SubAttributes: []schema.SimpleParams{
				schema.SimpleStringParams(schema.StringParams{
					CaseExact:   true,
					Description: optional.NewString("Identifier of the member of this Group."),
					Mutability:  schema.AttributeMutabilityImmutable(),
					Name:        "value",
				}),
				schema.SimpleStringParams(schema.StringParams{
					Description: optional.NewString("A human-readable name for the member."),
					Mutability:  schema.AttributeMutabilityImmutable(),
					Name:        "display",
				}),
				schema.SimpleReferenceParams(schema.ReferenceParams{
					Description:    optional.NewString("The URI corresponding to a SCIM resource that is a member of this Group."),
					Mutability:     schema.AttributeMutabilityImmutable(),
					Name:           "$ref",
					ReferenceTypes: []schema.AttributeReferenceType{"User", "Group"},
				}),
				schema.SimpleStringParams(schema.StringParams{
					CanonicalValues: []string{"User", "Group"},
					Description:     optional.NewString("A label indicating the type of resource, e.g., 'User' or 'Group'."),
					Mutability:      schema.AttributeMutabilityImmutable(),
					Name:            "type",
				}),
			},
		}),
	)
	return schema.Schema{
		Attributes:  attrs,
		Description: optional.NewString("Group"),
		ID:          GroupSchemaURN,
		Name:        optional.NewString("Group"),
	}
}
